package importer

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/siyu-dev/siyu/internal/commerce"
	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/errs"
)

// OrderWriter upserts an order by (source, order_id), resolving its buyer
// through One ID; sending an order as stored writes nothing.
// *commerce.Service implements it.
type OrderWriter interface {
	UpsertOrder(ctx context.Context, tenantID int64, in commerce.OrderInput) (commerce.UpsertResult, error)
}

var _ OrderWriter = (*commerce.Service)(nil)

// orderFields are the targets of an order file besides customer identifiers.
// One row is one order, or one item of an order whose rows are adjacent and
// share the order id.
func orderFields() []Field {
	return []Field{
		{Name: "order_id", Label: "Order ID", Doc: "The source system's order id. Rows of an order with several items are adjacent and repeat it.",
			aliases: []string{"order_id", "order_no", "order_number", "订单号", "订单编号", "订单id", "主订单号", "主订单编号", "订单"}},
		{Name: "channel", Label: "Channel", Doc: "天猫/tmall, 京东/jd, 抖音/douyin_shop, 小程序/miniapp, 门店/offline_store, 其他/other (default: the import's source).",
			aliases: []string{"channel", "platform", "source", "渠道", "平台", "来源", "销售渠道", "订单来源", "下单渠道"}},
		{Name: "status", Label: "Status", Doc: "已支付/交易成功/paid, 待付款/pending, 已取消/交易关闭/cancelled (default paid).", aliases: []string{"status", "order_status", "状态", "订单状态", "交易状态"}},
		{Name: "total", Label: "Total (yuan)", Doc: "Yuan, to the fen: 128.50, ¥1,280.00. Default: paid + discount, or the items' sum.",
			aliases: []string{"total", "total_amount", "order_amount", "订单总额", "订单金额", "商品总额", "总金额", "应付金额", "商品总价"}},
		{Name: "discount", Label: "Discount (yuan)", Doc: "Yuan. Default: total − paid.", aliases: []string{"discount", "discount_amount", "优惠", "优惠金额", "折扣金额", "优惠总额"}},
		{Name: "paid", Label: "Paid (yuan)", Doc: "What the customer paid, in yuan: 128.50, ¥1,280.00.",
			aliases: []string{"paid", "amount", "paid_amount", "payment", "金额", "实付金额", "实付款", "实付", "支付金额", "实收金额", "付款金额", "买家实付"}},
		{Name: "currency", Label: "Currency", aliases: []string{"currency", "币种"}},
		{Name: "ordered_at", Label: "Ordered at",
			aliases: []string{"ordered_at", "order_time", "created_at", "下单时间", "创建时间", "订单创建时间", "订单时间", "下单日期"}},
		{Name: "paid_at", Label: "Paid at", Doc: "A date and time in the workspace's time zone; required for paid orders (default: ordered_at).",
			aliases: []string{"paid_at", "payment_time", "pay_time", "支付时间", "付款时间", "支付日期", "付款日期"}},
		{Name: "sku", Label: "SKU", aliases: []string{"sku", "sku_code", "商品编码", "商品编号", "sku编码", "货号", "商家编码", "规格编码"}},
		{Name: "product_name", Label: "Product",
			aliases: []string{"product", "product_name", "item_name", "商品", "商品名称", "商品名", "品名", "宝贝标题", "宝贝名称"}},
		{Name: "category", Label: "Category", aliases: []string{"category", "类目", "分类", "品类", "商品分类"}},
		{Name: "quantity", Label: "Quantity", aliases: []string{"quantity", "qty", "数量", "购买数量", "商品数量", "件数"}},
		{Name: "unit_price", Label: "Unit price (yuan)", Doc: "Yuan; with sku (and quantity, default 1) the row is an item.", aliases: []string{"unit_price", "price", "单价", "商品单价", "价格", "销售单价"}},
		{Name: "store_code", Label: "Store code", Doc: "A store of the workspace, by its code.", aliases: []string{"store_code", "store", "门店", "门店编码", "门店代码", "门店编号"}},
		{Name: "coupon_code", Label: "Coupon", aliases: []string{"coupon_code", "coupon", "优惠券", "券码", "优惠券码"}},
	}
}

// validateOrderMapping checks what an order file needs beyond an identifier.
func validateOrderMapping(used map[string]string) error {
	if _, ok := used["order_id"]; !ok {
		return errs.Field("mapping", "order_id_unmapped", "map a column to order_id: orders are matched by their order id")
	}
	_, total := used["total"]
	_, paid := used["paid"]
	_, price := used["unit_price"]
	_, sku := used["sku"]
	if !total && !paid && !(sku && price) {
		return errs.Field("mapping", "amount_unmapped", "map the order amount (paid or total, in yuan) or the items (sku and unit_price)")
	}
	if price && !sku {
		return errs.Field("mapping", "sku_unmapped", "items need a SKU column: map one to sku")
	}
	return nil
}

// channels maps the names files give channels to order sources.
var channels = map[string]commerce.Source{
	"天猫": commerce.SourceTmall, "淘宝": commerce.SourceTmall, "tmall": commerce.SourceTmall, "taobao": commerce.SourceTmall, "天猫商城": commerce.SourceTmall,
	"京东": commerce.SourceJD, "jd": commerce.SourceJD, "京东商城": commerce.SourceJD,
	"抖音": commerce.SourceDouyinShop, "抖店": commerce.SourceDouyinShop, "抖音小店": commerce.SourceDouyinShop, "抖音商城": commerce.SourceDouyinShop,
	"douyin": commerce.SourceDouyinShop, "douyin_shop": commerce.SourceDouyinShop,
	"小程序": commerce.SourceMiniApp, "微信小程序": commerce.SourceMiniApp, "商城小程序": commerce.SourceMiniApp, "miniapp": commerce.SourceMiniApp,
	"门店": commerce.SourceOfflineStore, "线下": commerce.SourceOfflineStore, "线下门店": commerce.SourceOfflineStore, "pos": commerce.SourceOfflineStore,
	"offline": commerce.SourceOfflineStore, "offline_store": commerce.SourceOfflineStore, "store": commerce.SourceOfflineStore,
	"其他": commerce.SourceOther, "其它": commerce.SourceOther, "other": commerce.SourceOther,
}

func parseChannel(v string) (commerce.Source, error) {
	if s, ok := channels[strings.ToLower(strings.TrimSpace(v))]; ok {
		return s, nil
	}
	return "", fmt.Errorf("%q is not a known channel (天猫/tmall, 京东/jd, 抖音/douyin_shop, 小程序/miniapp, 门店/offline_store, 其他/other)", v)
}

func validOrderSource(v string) error {
	if _, err := parseChannel(v); err != nil {
		return errs.Field("source", "unsupported_source", "%s", err)
	}
	return nil
}

// statuses maps the status words of common exports to order statuses.
var statuses = map[string]commerce.Status{
	"paid": commerce.Paid, "已支付": commerce.Paid, "已付款": commerce.Paid, "交易成功": commerce.Paid, "已完成": commerce.Paid, "完成": commerce.Paid,
	"待发货": commerce.Paid, "已发货": commerce.Paid, "卖家已发货": commerce.Paid, "买家已付款": commerce.Paid, "已签收": commerce.Paid,
	"等待卖家发货": commerce.Paid, "等待买家确认收货": commerce.Paid, "completed": commerce.Paid,
	"pending": commerce.Pending, "待付款": commerce.Pending, "待支付": commerce.Pending, "未付款": commerce.Pending, "等待买家付款": commerce.Pending,
	"cancelled": commerce.Cancelled, "canceled": commerce.Cancelled, "已取消": commerce.Cancelled, "取消": commerce.Cancelled,
	"交易关闭": commerce.Cancelled, "已关闭": commerce.Cancelled, "closed": commerce.Cancelled,
}

func parseStatus(v string) (commerce.Status, error) {
	if s, ok := statuses[strings.ToLower(strings.TrimSpace(v))]; ok {
		return s, nil
	}
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "refunded", "partially_refunded", "已退款", "退款成功", "部分退款":
		return "", fmt.Errorf("%q: import refunded orders as paid and record their refunds through the refunds API", v)
	}
	return "", fmt.Errorf("%q is not an order status (已支付/paid, 待付款/pending, 已取消/cancelled)", v)
}

// orderLine is one row of an order file.
type orderLine struct {
	row        int64
	orderID    string
	identities []customer.Identity
	values     map[string]string // order-level fields as written, by field name
	columns    map[string]string // field name → header, for errors
	item       *commerce.ItemInput
	errs       rowErrors
}

// orderLevel are the fields that describe the order, not an item; every row
// of an order must agree on them.
var orderLevel = []string{"channel", "status", "total", "discount", "paid", "currency", "ordered_at", "paid_at", "store_code", "coupon_code"}

// line reads one row of an order file.
func (pl *plan) line(r dataRow) orderLine {
	ln := orderLine{row: r.no, values: map[string]string{}, columns: map[string]string{}, errs: rowErrors{row: r.no}}
	item := commerce.ItemInput{Quantity: 1}
	hasItem, hasPrice := false, false
	for _, c := range pl.cols {
		v := ""
		if c.index < len(r.cells) {
			v = r.cells[c.index]
		}
		ln.columns[c.field.Name] = c.header
		if v == "" {
			continue
		}
		if c.field.Identity != "" {
			if pl.identity(&ln.errs, c, v) {
				ln.identities = append(ln.identities, customer.Identity{Kind: c.field.Identity, Value: v})
			}
			continue
		}
		switch c.field.Name {
		case "order_id":
			ln.orderID = v
		case "sku":
			item.SKU, hasItem = v, true
		case "product_name":
			item.Name, hasItem = v, true
		case "category":
			item.Category = v
		case "quantity":
			n, err := parseInt(v)
			if err == nil && n < 1 {
				err = fmt.Errorf("%q: the quantity must be at least 1", v)
			}
			if err != nil {
				ln.errs.add(c.header, "invalid_quantity", "%s", err)
				continue
			}
			item.Quantity = n
		case "unit_price":
			fen, err := commerce.ParseYuan(v)
			if err == nil && fen < 0 {
				err = fmt.Errorf("%q: a price cannot be negative", v)
			}
			if err != nil {
				ln.errs.add(c.header, "invalid_amount", "%s", err)
				continue
			}
			item.UnitPriceFen, hasPrice = fen, true
		default:
			ln.values[c.field.Name] = v
		}
	}
	if ln.orderID == "" {
		ln.errs.add(ln.columns["order_id"], "order_id_required", "the row has no order id")
	}
	if hasItem {
		switch {
		case item.SKU == "":
			ln.errs.add(ln.columns["sku"], "sku_required", "the item has no SKU")
		case !hasPrice:
			ln.errs.add(ln.columns["unit_price"], "unit_price_required", "the item %s has no unit price", item.SKU)
		default:
			ln.item = &item
		}
	}
	return ln
}

// order builds an order from its rows (all sharing one order id).
func (pl *plan) order(lines []orderLine) (commerce.OrderInput, []RowError) {
	var es []RowError
	for _, ln := range lines {
		es = append(es, ln.errs.list...)
	}
	first := lines[0]
	e := rowErrors{row: first.row}
	in := commerce.OrderInput{OrderID: first.orderID, Status: commerce.Paid}
	seen := map[customer.Identity]bool{}
	vals := map[string]string{}
	for _, ln := range lines {
		for _, id := range ln.identities {
			if !seen[id] {
				seen[id] = true
				in.Identities = append(in.Identities, id)
			}
		}
		for _, f := range orderLevel {
			v, ok := ln.values[f]
			if !ok {
				continue
			}
			if prev, ok := vals[f]; ok && prev != v {
				es = append(es, RowError{Row: ln.row, Column: ln.columns[f], Code: "order_rows_disagree",
					Message: fmt.Sprintf("the rows of order %s disagree on %s (%q, then %q): order-level columns must repeat the same value", first.orderID, f, prev, v)})
				continue
			}
			vals[f] = v
		}
		if ln.item != nil {
			in.Items = append(in.Items, *ln.item)
		}
	}
	col := first.columns
	if len(in.Identities) == 0 && !hasIdentityError(es) {
		e.add("", "no_identifier", "the order has no usable buyer identifier (%s)", strings.Join(identityFields(pl.kind), ", "))
	}
	src := vals["channel"]
	if src == "" {
		src = pl.source
	}
	if src == "" {
		e.add(col["channel"], "channel_required", "the order has no channel: map a channel column or choose a default source for the file")
	} else if s, err := parseChannel(src); err != nil {
		e.add(col["channel"], "unsupported_source", "%s", err)
	} else {
		in.Source = s
	}
	if v, ok := vals["status"]; ok {
		st, err := parseStatus(v)
		if err != nil {
			e.add(col["status"], "invalid_status", "%s", err)
		}
		in.Status = st
	}
	amounts := map[string]int64{}
	for _, f := range []string{"total", "discount", "paid"} {
		v, ok := vals[f]
		if !ok {
			continue
		}
		fen, err := commerce.ParseYuan(v)
		if err == nil && fen < 0 {
			err = fmt.Errorf("%q: amounts cannot be negative", v)
		}
		if err != nil {
			e.add(col[f], "invalid_amount", "%s", err)
			continue
		}
		amounts[f] = fen
	}
	for _, f := range []string{"ordered_at", "paid_at"} {
		v, ok := vals[f]
		if !ok {
			continue
		}
		t, err := parseTime(v, pl.loc)
		if err == nil && (t.Year() < 2000 || t.After(time.Now().Add(24*time.Hour))) {
			err = fmt.Errorf("%q is not between 2000 and now", v)
		}
		if err != nil {
			e.add(col[f], "invalid_time", "%s", err)
			continue
		}
		if f == "ordered_at" {
			in.OrderedAt = t
		} else {
			in.PaidAt = t
		}
	}
	if in.Status.WasPaid() && in.PaidAt.IsZero() {
		if in.OrderedAt.IsZero() {
			e.add(col["paid_at"], "paid_at_required", "a paid order needs its payment time (map paid_at, or ordered_at)")
		}
		in.PaidAt = in.OrderedAt
	}
	in.Currency = vals["currency"]
	in.StoreCode = vals["store_code"]
	in.CouponCode = vals["coupon_code"]
	if len(e.list) == 0 && len(es) == 0 {
		pl.amounts(&in, amounts, col, &e)
	}
	return in, append(es, e.list...)
}

// amounts fills the order's money from what the file gives: items and/or
// total, discount, paid (total = paid + discount when only those are given).
func (pl *plan) amounts(in *commerce.OrderInput, a map[string]int64, col map[string]string, e *rowErrors) {
	total, hasTotal := a["total"]
	paid, hasPaid := a["paid"]
	discount, hasDiscount := a["discount"]
	if len(in.Items) > 0 {
		var sum int64
		for _, it := range in.Items {
			sum += it.Quantity * it.UnitPriceFen
		}
		if hasTotal && total != sum {
			e.add(col["total"], "amount_mismatch", "the total (%s) is not the sum of the items (%s)", commerce.Yuan(total), commerce.Yuan(sum))
			return
		}
		total, hasTotal = sum, true
	}
	switch {
	case hasTotal && hasPaid && !hasDiscount:
		discount = total - paid
	case !hasTotal && hasPaid:
		total = paid + discount
	case !hasTotal:
		e.add(col["paid"], "amount_required", "the order has no amount")
		return
	}
	if discount < 0 || discount > total {
		e.add(col["discount"], "amount_mismatch", "the discount (%s) must be between 0 and the total (%s)", commerce.Yuan(discount), commerce.Yuan(total))
		return
	}
	if hasPaid && paid != total-discount {
		e.add(col["paid"], "amount_mismatch", "paid (%s) is not total (%s) − discount (%s)", commerce.Yuan(paid), commerce.Yuan(total), commerce.Yuan(discount))
		return
	}
	in.DiscountFen = discount
	if len(in.Items) == 0 {
		in.TotalFen = &total
	}
}

func hasIdentityError(es []RowError) bool {
	for _, e := range es {
		switch e.Code {
		case "invalid_phone", "phone_masked", "invalid_email", "invalid_identifier":
			return true
		}
	}
	return false
}
