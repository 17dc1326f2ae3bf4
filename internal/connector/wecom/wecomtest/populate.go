package wecomtest

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/siyu-dev/siyu/internal/connector/wecom"
)

var (
	surnames   = []string{"王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭", "何", "林", "罗", "高"}
	givenNames = []string{"伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "洋", "艳", "勇", "军", "杰", "娟", "涛", "明", "超", "秀英", "霞", "平",
		"小红", "晓明", "子涵", "欣怡", "梓萱", "浩然", "宇轩", "思远", "雨桐", "佳怡"}
	states = []string{"store_checkout", "parcel_card", "ad_moments", "live_stream", "event_booth"}
	// tagSets are the corp tag groups a populated corp has.
	tagSets = []struct {
		group string
		tags  []string
	}{
		{"客户等级", []string{"普通", "银卡", "金卡", "钻石"}},
		{"兴趣", []string{"护肤", "彩妆", "香水", "个护", "母婴"}},
		{"来源渠道", []string{"门店", "电商", "直播", "社群"}},
		{"生命周期", []string{"新客", "活跃", "沉睡", "流失预警"}},
	}
)

// Populate fills a corp with staff members, customers and their relations,
// corp tags and customer groups, silently (no callbacks), for benchmarks and
// the demo: contacts customers over staff members (staffCount ≥ 1), a tenth of
// them also added by a second member, about one group per five members. The
// same seed gives the same corp. It is fast (no per-customer maps beyond the
// corp's own index) and light: tag lists are shared between relations and
// copied only when changed.
func Populate(c *Corp, contacts, staffCount int, seed int64) error {
	if staffCount < 1 || contacts < 0 {
		return fmt.Errorf("wecomtest: populate needs at least one member and no negative count")
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0x5157_4e47))
	start := c.Now().Add(-365 * 24 * time.Hour)
	c.mu.Lock()
	defer c.mu.Unlock()

	// Departments: one per twenty members under the root.
	ndept := max(1, staffCount/20)
	var depts []int64
	for i := 0; i < ndept; i++ {
		id := int64(1000 + i)
		if c.depts[id] == nil {
			c.depts[id] = &Department{ID: id, Name: fmt.Sprintf("门店%02d", i+1), ParentID: 1, Order: int64(ndept - i)}
		}
		depts = append(depts, id)
	}
	staffIDs := make([]string, staffCount)
	for i := range staffIDs {
		id := fmt.Sprintf("staff%04d", i+1)
		d := depts[i%len(depts)]
		name := surnames[rng.IntN(len(surnames))] + givenNames[rng.IntN(len(givenNames))]
		if _, err := c.putStaff(Staff{UserID: id, Name: name, Departments: []int64{d}, Position: "导购"}); err != nil {
			return err
		}
		staffIDs[i] = id
	}

	// Corp tags, and the tag lists relations take from: nothing, or one or
	// two tags. Shared slices keep 100k relations light.
	var tagIDs []string
	for gi, set := range tagSets {
		g, err := c.addTagGroup(set.group, int64(len(tagSets)-gi))
		if err != nil {
			return err
		}
		for ti, n := range set.tags {
			t, err := c.addTag(g, n, int64(len(set.tags)-ti))
			if err != nil {
				return err
			}
			tagIDs = append(tagIDs, t.ID)
		}
	}
	combos := [][]string{nil, nil}
	for i := range tagIDs {
		combos = append(combos, tagIDs[i:i+1])
		if j := (i*7 + 3) % len(tagIDs); j != i {
			combos = append(combos, []string{tagIDs[i], tagIDs[j]})
		}
	}

	// Names and avatars come from small shared tables: no string per customer.
	names := make([]string, 0, len(surnames)*len(givenNames))
	for _, sn := range surnames {
		for _, gn := range givenNames {
			names = append(names, sn+gn)
		}
	}
	avatars := make([]string, 256)
	for i := range avatars {
		avatars[i] = "https://wework.qpic.cn/sim/avatar/" + strconv.Itoa(i)
	}
	span := int64(c.Now().Sub(start) / time.Second)
	for i := 0; i < contacts; i++ {
		ct := Contact{
			Name:   names[rng.IntN(len(names))],
			Gender: 1 + rng.IntN(2),
			Avatar: avatars[i%len(avatars)],
		}
		if rng.IntN(50) == 0 {
			ct.Type, ct.CorpName, ct.CorpFullName, ct.Position = wecom.ContactWeCom, "合作伙伴", "合作伙伴科技有限公司", "采购"
		}
		r, err := c.putContact(ct)
		if err != nil {
			return err
		}
		n := 1
		if rng.IntN(10) == 0 && staffCount > 1 {
			n = 2
		}
		first := rng.IntN(staffCount)
		for k := 0; k < n; k++ {
			f := Follow{
				UserID:     staffIDs[(first+k*(1+rng.IntN(staffCount-1)))%staffCount],
				CreateTime: start.Add(time.Duration(rng.Int64N(span)) * time.Second),
				TagIDs:     combos[rng.IntN(len(combos))],
				AddWay:     1,
			}
			if rng.IntN(3) == 0 {
				f.State = states[rng.IntN(len(states))]
			}
			if rng.IntN(4) == 0 {
				f.Remark = r.Name
			}
			if k > 0 && f.UserID == r.follows[0].UserID {
				continue
			}
			if _, err := c.addFollowShared(r, f); err != nil {
				return err
			}
		}
	}

	// Groups: about one per five members, each with some of its owner's customers.
	for i := 0; i < max(1, staffCount/5); i++ {
		owner := c.staff[staffIDs[i%staffCount]]
		g, err := c.addGroup(owner.UserID, fmt.Sprintf("%s的会员群%d", owner.Name, i+1), nil, wecom.JoinByInvite)
		if err != nil {
			return err
		}
		for j, f := range owner.follows {
			if j >= 40 {
				break
			}
			m, err := c.newMember(f.ExternalUserID, 1+rng.IntN(3), owner.UserID)
			if err != nil {
				return err
			}
			g.Members = append(g.Members, m)
		}
	}
	return nil
}

// addFollowShared is addFollow without copying TagIDs, for Populate's shared
// tag lists; every later change to a relation's tags builds a new slice. The
// caller holds c.mu.
func (c *Corp) addFollowShared(r *contactRec, f Follow) (*followRec, error) {
	tags := f.TagIDs
	f.TagIDs = nil
	fr, err := c.addFollow(r, f)
	if err != nil {
		return nil, err
	}
	fr.TagIDs = tags
	return fr, nil
}
