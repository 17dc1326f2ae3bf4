package demo

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"github.com/siyu-dev/siyu/internal/app"
	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/staff"
)

// BrandName is the demo brand: a tea-drink chain, the kind of brand that runs
// a large private domain (mini-program ordering, store codes, member groups).
const BrandName = "茶语时光 TeaTime"

// Sizes of the generated brand.
const (
	customersPerBatch = 1000
	demoCustomers     = 20000
)

type city struct {
	name, province, code string
	districts            []string
}

var cities = []city{
	{"上海", "上海", "SH", []string{"静安寺", "徐家汇", "陆家嘴", "五角场"}},
	{"杭州", "浙江", "HZ", []string{"湖滨", "西溪", "滨江"}},
	{"北京", "北京", "BJ", []string{"三里屯", "中关村", "国贸"}},
	{"深圳", "广东", "SZ", []string{"福田", "南山", "华强北"}},
	{"广州", "广东", "GZ", []string{"天河", "北京路"}},
	{"成都", "四川", "CD", []string{"春熙路", "太古里"}},
	{"南京", "江苏", "NJ", []string{"新街口", "河西"}},
	{"苏州", "江苏", "SU", []string{"观前街", "金鸡湖"}},
	{"武汉", "湖北", "WH", []string{"江汉路", "光谷"}},
	{"西安", "陕西", "XA", []string{"钟楼", "大雁塔"}},
}

var (
	surnames = []rune("王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯邓曹彭曾肖田董潘袁蔡蒋余于杜叶程魏苏吕丁任沈姚卢傅钟姜崔谭陆范汪廖石金韦贾夏付方邹熊白孟秦邱侯江尹薛闫段雷龙黎史陶贺毛郝顾龚邵万覃武钱戴严莫孔向常汤")
	female   = []rune("芳娜敏静丽艳娟霞秀玲桂英华慧巧美婷雪琳晶欣怡佳悦思雨梦涵萱瑶璐颖倩妍彤诗琪媛蕾薇菲莹")
	male     = []rune("伟强磊军勇杰涛明超辉刚平鹏华飞鑫波宇浩凯俊帅峰旭昊然博文轩哲睿晨阳泽宁毅鸿志")
	sources  = []struct {
		name   string
		weight int
	}{
		{"store", 40},        // 门店活码 at checkout
		{"miniapp", 25},      // 小程序 sign-up
		{"douyin_live", 12},  // 抖音直播
		{"tmall_parcel", 10}, // 天猫包裹卡
		{"official_acct", 8}, // 公众号
		{"referral", 5},      // 老带新
	}
	titles = []string{"店长", "导购", "导购", "客服"}
)

func personName(r *rand.Rand, isFemale bool) string {
	pool := male
	if isFemale {
		pool = female
	}
	n := string(surnames[r.IntN(len(surnames))]) + string(pool[r.IntN(len(pool))])
	if r.IntN(3) > 0 {
		n += string(pool[r.IntN(len(pool))])
	}
	return n
}

// generate writes the demo brand: stores in ten cities, their staff, and
// customers who arrived through the brand's channels over the last 18 months.
func generate(ctx context.Context, a *app.App, tenantID int64, progress io.Writer) error {
	r := rand.New(rand.NewPCG(2026, 11))
	type storeRef struct {
		staff.Store
		city city
	}
	var stores []storeRef
	for _, c := range cities {
		for i, d := range c.districts {
			st, err := a.Staff.CreateStore(ctx, tenantID, staff.Store{
				Code: fmt.Sprintf("%s-%02d", c.code, i+1), Name: c.name + d + "店",
				Province: c.province, City: c.name, Address: fmt.Sprintf("%s%s路%d号", c.name, d, 10+r.IntN(300)),
			})
			if err != nil {
				return fmt.Errorf("demo: store: %w", err)
			}
			stores = append(stores, storeRef{st, c})
		}
	}
	nStaff := 0
	for _, st := range stores {
		for j, title := range titles {
			_, err := a.Staff.CreateMember(ctx, tenantID, staff.Member{
				Name: personName(r, r.IntN(10) < 7), Title: title, StoreID: st.ID,
				WeComUserID: fmt.Sprintf("%s%d", st.Code, j+1),
			})
			if err != nil {
				return fmt.Errorf("demo: staff: %w", err)
			}
			nStaff++
		}
	}
	fmt.Fprintf(progress, "demo: %d stores, %d staff\n", len(stores), nStaff)

	now := time.Now().UTC()
	phones := map[string]bool{}
	totalWeight := 0
	for _, s := range sources {
		totalWeight += s.weight
	}
	batch := make([]customer.NewCustomer, 0, customersPerBatch)
	for i := range demoCustomers {
		isFemale := r.IntN(100) < 64
		st := stores[r.IntN(len(stores))]
		var phone string
		for phone == "" || phones[phone] {
			phone = fmt.Sprintf("1%d%09d", 3+r.IntN(7), r.IntN(1_000_000_000))
		}
		phones[phone] = true
		pick := r.IntN(totalWeight)
		src := sources[0].name
		for _, s := range sources {
			if pick < s.weight {
				src = s.name
				break
			}
			pick -= s.weight
		}
		code := ""
		if src == "store" {
			code = "store-" + st.Code
		}
		first := now.Add(-time.Duration(r.Int64N(int64(540 * 24 * time.Hour))))
		last := first.Add(time.Duration(r.Int64N(int64(now.Sub(first)) + 1)))
		gender := "male"
		if isFemale {
			gender = "female"
		}
		birthday := ""
		if r.IntN(10) < 7 {
			birthday = time.Date(1970+r.IntN(36), time.Month(1+r.IntN(12)), 1+r.IntN(28), 0, 0, 0, 0, time.UTC).Format(time.DateOnly)
		}
		batch = append(batch, customer.NewCustomer{
			Name: personName(r, isFemale), Gender: gender, Birthday: birthday,
			Province: st.city.province, City: st.city.name, Phone: phone,
			FirstSource: src, FirstSourceCode: code, FirstSeenAt: first, LastSeenAt: last,
			Identities: []customer.Identity{{Kind: customer.KindUserID, Value: fmt.Sprintf("m%07d", 1000000+i)}},
		})
		if len(batch) == customersPerBatch || i == demoCustomers-1 {
			if _, err := a.Customers.CreateMany(ctx, tenantID, batch); err != nil {
				return fmt.Errorf("demo: customers: %w", err)
			}
			fmt.Fprintf(progress, "demo: customers %d/%d\n", i+1, demoCustomers)
			batch = batch[:0]
		}
	}
	if err := generateTags(ctx, a, tenantID, progress); err != nil {
		return err
	}
	return nil
}
