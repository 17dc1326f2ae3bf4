package importer

import (
	"fmt"
	"slices"
	"strings"
	"unicode"

	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/errs"
)

// Kinds of import.
const (
	KindCustomers = "customers"
	KindOrders    = "orders"
)

// TraitPrefix marks a mapping target that is a custom trait: "trait:会员等级".
const TraitPrefix = "trait:"

// Field is a target a column can be mapped to.
type Field struct {
	Name string `json:"name" doc:"The mapping target, e.g. phone, name, order_id."`
	// Identity is the customer identity kind the field carries, if any.
	Identity string `json:"identity,omitempty" doc:"The customer identifier kind this field carries, if any."`
	// Repeat fields may be mapped from several columns (two phone columns).
	Repeat bool `json:"repeatable,omitempty" doc:"Several columns may map to this field."`
	// Label is the column header an export writes and the wizard shows.
	Label string `json:"label" doc:"An English label."`
	// Doc says what values the field takes, when that is not obvious.
	Doc string `json:"doc,omitempty" doc:"What values the field takes."`
	// aliases are header names, normalised by headerKey, that suggest it.
	aliases []string
}

// Fields lists the mapping targets of an import kind (custom traits aside).
func Fields(kind string) []Field {
	ids := []Field{
		{Name: "user_id", Identity: customer.KindUserID, Label: "User ID",
			aliases: []string{"user_id", "userid", "会员id", "会员号", "会员编号", "会员卡号", "卡号", "用户id", "客户id", "客户编号", "member_id", "memberid", "member_no", "customer_id"}},
		{Name: "phone", Identity: customer.KindPhone, Repeat: true, Label: "Phone",
			Doc:     "A mainland mobile number in any common form (138 0013 8000, +86…), or +country code.",
			aliases: []string{"phone", "手机", "手机号", "手机号码", "电话", "电话号码", "联系电话", "联系方式", "移动电话", "mobile", "mobile_phone", "tel", "telephone", "cellphone", "phone_number"}},
		{Name: "email", Identity: customer.KindEmail, Repeat: true, Label: "Email",
			aliases: []string{"email", "e-mail", "mail", "邮箱", "电子邮箱", "电子邮件", "邮件"}},
		{Name: "wechat_unionid", Identity: customer.KindUnionID, Label: "WeChat UnionID",
			aliases: []string{"unionid", "union_id", "wechat_unionid", "微信unionid"}},
		{Name: "wecom_external_userid", Identity: customer.KindWeComExtID, Label: "WeCom external_userid",
			aliases: []string{"external_userid", "externaluserid", "wecom_external_userid", "外部联系人id", "企业微信外部联系人id", "企微外部联系人id", "企微id"}},
		{Name: "mp_openid", Identity: customer.KindMPOpenID, Repeat: true, Label: "Official account OpenID",
			aliases: []string{"openid", "mp_openid", "公众号openid"}},
		{Name: "miniapp_openid", Identity: customer.KindMiniOpenID, Repeat: true, Label: "Mini program OpenID",
			aliases: []string{"miniapp_openid", "小程序openid"}},
		{Name: "douyin_openid", Identity: customer.KindDouyinOpen, Repeat: true, Label: "Douyin OpenID",
			aliases: []string{"douyin_openid", "抖音openid"}},
		{Name: "shop_buyer_id", Identity: customer.KindShopBuyerID, Repeat: true, Label: "Shop buyer ID",
			Doc:     "Prefixed with the shop, as the orders API takes it: tmall:buyer123.",
			aliases: []string{"shop_buyer_id", "buyer_id", "买家id", "买家账号", "买家会员名", "旺旺", "旺旺id"}},
		{Name: "anonymous_id", Identity: customer.KindAnonymousID, Repeat: true, Label: "Anonymous ID",
			aliases: []string{"anonymous_id", "anonymousid", "匿名id"}},
	}
	switch kind {
	case KindCustomers:
		return append(ids,
			Field{Name: "name", Label: "Name",
				aliases: []string{"name", "姓名", "名字", "客户姓名", "客户名称", "会员姓名", "真实姓名", "full_name", "fullname", "customer_name"}},
			Field{Name: "nickname", Label: "Nickname", aliases: []string{"nickname", "昵称", "微信昵称"}},
			Field{Name: "gender", Label: "Gender", Doc: "男/女, male/female, M/F or 1/2; 未知 or empty leaves it unset.", aliases: []string{"gender", "sex", "性别"}},
			Field{Name: "birthday", Label: "Birthday", Doc: "A date: 1990-05-20, 1990/5/20, 19900520, 1990年5月20日 or a spreadsheet date.",
				aliases: []string{"birthday", "birth_date", "birthdate", "date_of_birth", "dob", "生日", "出生日期", "出生年月日"}},
			Field{Name: "province", Label: "Province", aliases: []string{"province", "state", "省", "省份", "所在省份", "所在省"}},
			Field{Name: "city", Label: "City", aliases: []string{"city", "城市", "市", "所在城市", "所在市"}},
			Field{Name: "avatar", Label: "Avatar", aliases: []string{"avatar", "avatar_url", "头像"}},
			Field{Name: "source", Label: "First source", Doc: "The channel that first brought a new customer (default: the import's source, else import).",
				aliases: []string{"source", "first_source", "channel", "来源", "渠道", "来源渠道", "客户来源", "首次来源"}},
			Field{Name: "first_seen", Label: "First seen", Doc: "A date and time in the workspace's time zone (2026-03-01 14:30) or a spreadsheet date.",
				aliases: []string{"first_seen", "first_seen_at", "created_at", "signup_time", "registered_at", "注册时间", "注册日期", "创建时间", "加入时间", "入会时间", "首次访问", "首次访问时间"}},
			Field{Name: "last_seen", Label: "Last seen", Doc: "A date and time in the workspace's time zone; moves last-seen forward only.",
				aliases: []string{"last_seen", "last_seen_at", "最近访问", "最近访问时间", "最后访问时间", "最近活跃时间", "最近活跃"}},
		)
	case KindOrders:
		return append(ids, orderFields()...)
	}
	return nil
}

// Kinds lists the import kinds.
func Kinds() []string { return []string{KindCustomers, KindOrders} }

// standardTraits are trait names the customer profile keeps in columns; a
// custom trait may not take one of them.
var standardTraits = []string{"name", "firstName", "lastName", "first_name", "last_name", "gender", "birthday", "province", "city",
	"address", "phone", "email", "avatar", "nickname"}

// headerKey normalises a header for matching: lower case, no spaces,
// underscores, dashes, asterisks (required-field marks), and no bracketed
// note such as 金额(元) or 手机号（必填）.
func headerKey(h string) string {
	h = strings.ToLower(strings.TrimSpace(h))
	for _, pair := range [][2]string{{"(", ")"}, {"（", "）"}, {"[", "]"}, {"【", "】"}} {
		for {
			i := strings.Index(h, pair[0])
			if i < 0 {
				break
			}
			j := strings.Index(h[i:], pair[1])
			if j < 0 {
				h = h[:i]
				break
			}
			h = h[:i] + h[i+j+len(pair[1]):]
		}
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) || r == '_' || r == '-' || r == '*' || r == ':' || r == '：' {
			return -1
		}
		return r
	}, h)
}

// suggest proposes a target for a header: a known field whose alias matches,
// or a custom trait named after the header (customers), or nothing.
func suggest(kind, header string, taken map[string]bool) string {
	k := headerKey(header)
	if k == "" {
		return ""
	}
	for _, f := range Fields(kind) {
		if taken[f.Name] && !f.Repeat {
			continue
		}
		for _, a := range f.aliases {
			if headerKey(a) == k {
				return f.Name
			}
		}
	}
	if kind == KindCustomers && !known(header) && validTraitName(header) == nil {
		return TraitPrefix + header
	}
	return ""
}

// known reports whether a header matches any field of any kind, so a column
// such as "订单号" in a customer file is not offered as a custom trait.
func known(header string) bool {
	k := headerKey(header)
	for _, kind := range Kinds() {
		for _, f := range Fields(kind) {
			if slices.ContainsFunc(f.aliases, func(a string) bool { return headerKey(a) == k }) {
				return true
			}
		}
	}
	return slices.Contains(ignoredHeaders, k)
}

// ignoredHeaders are columns left out by default: Siyu's own customer id (of
// an export) and row numbers mean nothing to another workspace.
var ignoredHeaders = []string{"id", "siyuid", "系统id", "序号", "行号", "#"}

// headerScore counts the cells of a row that name a known field.
func headerScore(kind string, cells []string) int {
	n := 0
	taken := map[string]bool{}
	for _, c := range cells {
		if f := suggest(kind, c, taken); f != "" && !strings.HasPrefix(f, TraitPrefix) {
			taken[f] = true
			n++
		}
	}
	return n
}

func validTraitName(name string) error {
	switch {
	case strings.TrimSpace(name) == "" || name != strings.TrimSpace(name):
		return fmt.Errorf("a trait name cannot be empty or start or end with spaces")
	case len(name) > 64:
		return fmt.Errorf("a trait name has at most 64 bytes")
	case slices.Contains(standardTraits, name):
		return fmt.Errorf("%q is a standard profile field: map the column to the field %s instead", name, name)
	}
	return nil
}

// Column is one column of an uploaded file.
type Column struct {
	Index   int      `json:"index" doc:"0-based position."`
	Letter  string   `json:"letter" doc:"The spreadsheet column letter (A, B, …, AA)."`
	Header  string   `json:"header" doc:"The header text; the key of this column in a mapping. Made unique (\"电话 (2)\") when a file repeats a header, and the column letter when the header is empty."`
	Samples []string `json:"samples" nullable:"false" doc:"Values of the first rows (phones masked unless the caller may see personal data)."`

	blank bool // the file gives no header: nothing is suggested
}

// Mapping maps column headers to targets: a field name, "trait:NAME" for a
// custom trait, or "" to ignore the column.
type Mapping map[string]string

// validate checks a mapping against the columns of a file.
func (m Mapping) validate(kind string, cols []Column) error {
	fields := map[string]Field{}
	for _, f := range Fields(kind) {
		fields[f.Name] = f
	}
	headers := map[string]bool{}
	for _, c := range cols {
		headers[c.Header] = true
	}
	used := map[string]string{}
	hasID := false
	var bad []errs.FieldError
	for _, h := range sortedKeys(m) {
		target := m[h]
		loc := "mapping." + h
		switch {
		case !headers[h]:
			bad = append(bad, errs.FieldError{Location: loc, Message: fmt.Sprintf("the file has no column %q", h)})
		case target == "":
		case strings.HasPrefix(target, TraitPrefix):
			if kind != KindCustomers {
				bad = append(bad, errs.FieldError{Location: loc, Message: "custom traits can be imported with customers only"})
			} else if err := validTraitName(strings.TrimPrefix(target, TraitPrefix)); err != nil {
				bad = append(bad, errs.FieldError{Location: loc, Message: err.Error()})
			} else if prev, dup := used[target]; dup {
				bad = append(bad, errs.FieldError{Location: loc, Message: fmt.Sprintf("columns %q and %q both map to %s", prev, h, target)})
			}
			used[target] = h
		default:
			f, ok := fields[target]
			if !ok {
				bad = append(bad, errs.FieldError{Location: loc, Message: fmt.Sprintf("unknown field %q (known: %s, or trait:NAME, or empty to ignore)", target, strings.Join(fieldNames(kind), ", "))})
				continue
			}
			if prev, dup := used[target]; dup && !f.Repeat {
				bad = append(bad, errs.FieldError{Location: loc, Message: fmt.Sprintf("columns %q and %q both map to %s; only one may", prev, h, target)})
			}
			used[target] = h
			hasID = hasID || f.Identity != ""
		}
	}
	if len(bad) > 0 {
		return &errs.Error{Kind: errs.Invalid, Code: "invalid_mapping", Message: bad[0].Message, Fields: bad}
	}
	if !hasID {
		return errs.Field("mapping", "identifier_unmapped",
			"map at least one column to a customer identifier (%s) so each row can be matched to a profile", strings.Join(identityFields(kind), ", "))
	}
	if kind == KindOrders {
		return validateOrderMapping(used)
	}
	return nil
}

func fieldNames(kind string) []string {
	var out []string
	for _, f := range Fields(kind) {
		out = append(out, f.Name)
	}
	return out
}

func identityFields(kind string) []string {
	var out []string
	for _, f := range Fields(kind) {
		if f.Identity != "" {
			out = append(out, f.Name)
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// columnsOf names the columns of a header row: the header text, made unique,
// or the column letter when empty.
func columnsOf(header []string) []Column {
	cols := make([]Column, 0, len(header))
	seen := map[string]int{}
	for i, h := range header {
		name := h
		if name == "" {
			name = columnLetter(i)
		}
		seen[name]++
		if n := seen[name]; n > 1 {
			name = fmt.Sprintf("%s (%d)", name, n)
		}
		cols = append(cols, Column{Index: i, Letter: columnLetter(i), Header: name, Samples: []string{}, blank: h == ""})
	}
	return cols
}

// suggestMapping proposes a target for every column.
func suggestMapping(kind string, cols []Column) Mapping {
	m := Mapping{}
	taken := map[string]bool{}
	for _, c := range cols {
		if c.blank {
			m[c.Header] = ""
			continue
		}
		f := suggest(kind, c.Header, taken)
		if f != "" && !strings.HasPrefix(f, TraitPrefix) {
			taken[f] = true
		}
		m[c.Header] = f
	}
	return m
}
