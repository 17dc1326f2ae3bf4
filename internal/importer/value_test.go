package importer

import (
	"fmt"
	"testing"
	"time"
)

func TestParseDatesAndTimes(t *testing.T) {
	t.Parallel()
	sh, _ := time.LoadLocation("Asia/Shanghai")
	for _, tc := range []struct{ in, want string }{
		{"1990-05-20", "1990-05-20"},
		{"1990/5/20", "1990-05-20"},
		{"1990.05.20", "1990-05-20"},
		{"19900520", "1990-05-20"},
		{"1990年5月20日", "1990-05-20"},
		{"33013", "1990-05-20"}, // an Excel serial
		{"1990-05-20 08:00:00", "1990-05-20"},
	} {
		if got, err := parseDate(tc.in); err != nil || got != tc.want {
			t.Errorf("parseDate(%q) = %q, %v; want %s", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"1990", "1990-13-01", "yesterday", "20/05/1990"} {
		if got, err := parseDate(bad); err == nil {
			t.Errorf("parseDate(%q) = %q, want an error", bad, got)
		}
	}
	want := time.Date(2026, 3, 1, 14, 30, 0, 0, sh)
	for _, in := range []string{"2026-03-01 14:30:00", "2026/3/1 14:30", "2026-03-01T06:30:00Z", "46082.604166666664", "1772346600", "1772346600000"} {
		if got, err := parseTime(in, sh); err != nil || !got.Equal(want) {
			t.Errorf("parseTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
}

func TestParseGender(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"男": "male", "女": "female", "M": "male", "female": "female", "1": "male", "2": "female", "未知": "", "": ""} {
		if got, err := parseGender(in); err != nil || got != want {
			t.Errorf("parseGender(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := parseGender("x"); err == nil {
		t.Error("parseGender(x) succeeded")
	}
}

func TestHeaderSuggestions(t *testing.T) {
	t.Parallel()
	cases := map[string]map[string]string{
		KindCustomers: {
			"姓名": "name", "手机号（必填）": "phone", "*手机": "phone", "Mobile": "phone", "电话": "phone", "性别": "gender", "出生日期": "birthday",
			"省份": "province", "城市": "city", "邮箱": "email", "会员ID": "user_id", "UnionID": "wechat_unionid",
			"external_userid": "wecom_external_userid", "外部联系人ID": "wecom_external_userid", "来源": "source", "注册时间": "first_seen",
			"会员等级": "trait:会员等级", "ID": "", "订单号": "",
		},
		KindOrders: {
			"订单号": "order_id", "金额(元)": "paid", "实付金额": "paid", "支付时间": "paid_at", "商品": "product_name", "SKU": "sku",
			"数量": "quantity", "单价": "unit_price", "渠道": "channel", "订单状态": "status", "门店编码": "store_code", "手机号": "phone",
			"会员等级": "",
		},
	}
	for kind, m := range cases {
		for header, want := range m {
			if got := suggest(kind, header, map[string]bool{}); got != want {
				t.Errorf("%s: suggest(%q) = %q, want %q", kind, header, got, want)
			}
		}
	}
}

// Every header an export writes maps back to its field, in both languages,
// so an export can be imported as it is.
func TestExportHeadersAreRecognised(t *testing.T) {
	t.Parallel()
	want := []string{"", "name", "phone", "email", "gender", "birthday", "province", "city", "user_id", "wechat_unionid",
		"wecom_external_userid", "source", "first_seen", "last_seen"}
	cols := exportColumns()
	if len(cols) != len(want) {
		t.Fatalf("%d export columns, want %d", len(cols), len(want))
	}
	for i, c := range cols {
		for _, h := range []string{c.en, c.zh} {
			if got := suggest(KindCustomers, h, map[string]bool{}); got != want[i] {
				t.Errorf("export header %q suggests %q, want %q", h, got, want[i])
			}
		}
	}
}

func TestSniff(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		data             []byte
		format, encoding string
		fail             bool
	}{
		{data: []byte("a,b\n1,2\n"), format: FormatCSV, encoding: EncodingUTF8},
		{data: append([]byte{0xEF, 0xBB, 0xBF}, "姓名\n"...), format: FormatCSV, encoding: EncodingUTF8},
		{data: []byte{0xD0, 0xD5, 0xC3, 0xFB, '\n'}, format: FormatCSV, encoding: EncodingGB18030}, // 姓名 in GBK
		{data: []byte{0xFF, 0xFE, 'a', 0}, format: FormatCSV, encoding: EncodingUTF16},
		{data: []byte("PK\x03\x04rest"), format: FormatXLSX},
		{data: []byte{0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1}, fail: true}, // .xls
		{data: []byte{}, fail: true},
		{data: []byte("a\x00b"), fail: true},
	} {
		f, e, err := sniff(tc.data)
		if tc.fail != (err != nil) || f != tc.format || e != tc.encoding {
			t.Errorf("sniff(% x) = %q %q %v", tc.data[:min(8, len(tc.data))], f, e, err)
		}
	}
}

func TestCSVDelimiterAndFormulaGuard(t *testing.T) {
	t.Parallel()
	tb, err := openCSV([]byte("a;b;c\n'=1+1;'+86;x\n"), EncodingUTF8)
	if err != nil {
		t.Fatal(err)
	}
	tb.Next()
	cells, row, err := tb.Next()
	if err != nil || row != 2 || len(cells) != 3 || cells[0] != "=1+1" || cells[1] != "+86" {
		t.Fatalf("got %q row %d, %v", cells, row, err)
	}
	if csvSafe("=HYPERLINK(1)") != "'=HYPERLINK(1)" || csvSafe("张伟") != "张伟" {
		t.Error("csvSafe does not guard formulas")
	}
}

func TestColumnsOfBlankAndRepeatedHeaders(t *testing.T) {
	t.Parallel()
	cols := columnsOf([]string{"姓名", "", "手机", "手机", "会员等级"})
	var names []string
	for _, c := range cols {
		names = append(names, c.Header)
	}
	if got := fmt.Sprint(names); got != "[姓名 B 手机 手机 (2) 会员等级]" {
		t.Fatalf("headers %s", got)
	}
	m := suggestMapping(KindCustomers, cols)
	want := Mapping{"姓名": "name", "B": "", "手机": "phone", "手机 (2)": "phone", "会员等级": "trait:会员等级"}
	if fmt.Sprint(m) != fmt.Sprint(want) {
		t.Fatalf("mapping %v, want %v", m, want)
	}
	if err := m.validate(KindCustomers, cols); err != nil {
		t.Fatalf("two phone columns: %v", err)
	}
}
