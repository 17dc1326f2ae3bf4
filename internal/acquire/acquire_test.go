package acquire_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"image/png"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/siyu-dev/siyu/internal/acquire"
	"github.com/siyu-dev/siyu/internal/app/apptest"
	"github.com/siyu-dev/siyu/internal/commerce"
	"github.com/siyu-dev/siyu/internal/connector/wecom"
	"github.com/siyu-dev/siyu/internal/connector/wecom/wecomtest"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/db/dbtest"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/message"
	"github.com/siyu-dev/siyu/internal/page"
	"github.com/siyu-dev/siyu/internal/staff"
	"github.com/siyu-dev/siyu/internal/tag"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// env is the whole app with a workspace connected to a simulated corp with
// four staff members; the simulator's clock is the real one, so "today"
// is the same on both sides.
type env struct {
	t   *testing.T
	ctx context.Context
	srv *apptest.Server
	ws  apptest.Workspace
	sim *wecomtest.Server
	svc *acquire.Service
	p   tenant.Principal
}

var staffNames = map[string]string{"alice": "Alice", "bob": "Bob", "carol": "Carol", "dave": "Dave"}

func each(t *testing.T, fn func(t *testing.T, e *env)) {
	for _, engine := range dbtest.Engines() {
		t.Run(string(engine), func(t *testing.T) { fn(t, newEnv(t, engine, nil)) })
	}
}

func newEnv(t *testing.T, engine db.Dialect, before func(e *env)) *env {
	t.Helper()
	srv := apptest.Start(t, engine)
	ws := srv.NewWorkspace(t, "brand")
	sim := srv.NewWeComSim(t, ws, wecomtest.Options{CorpOptions: wecomtest.CorpOptions{Now: time.Now}})
	for _, u := range []string{"alice", "bob", "carol", "dave"} {
		if _, err := sim.PutStaff(wecomtest.Staff{UserID: u, Name: staffNames[u]}); err != nil {
			t.Fatal(err)
		}
	}
	e := &env{t: t, ctx: context.Background(), srv: srv, ws: ws, sim: sim, svc: srv.App.Acquire,
		p: tenant.Principal{TenantID: ws.ID, Kind: tenant.ActorUser, ID: ws.Owner.ID, Name: "Owner", Role: tenant.RoleOwner}}
	if before != nil {
		before(e)
	}
	srv.ConnectWeCom(t, ws, sim)
	return e
}

func ptr(n int) *int { return &n }

func (e *env) create(in acquire.CodeInput) acquire.ChannelCode {
	e.t.Helper()
	c, err := e.svc.Create(e.ctx, e.p, in)
	if err != nil {
		e.t.Fatalf("create: %v", err)
	}
	return c
}

// scan has a new customer scan the code and waits until Siyu has handled
// the add and turned the code in WeCom to the next staff member. It
// returns who got the customer.
func (e *env) scan(c acquire.ChannelCode, name string) wecomtest.AddResult {
	e.t.Helper()
	before := e.adds(c.ID)
	res, err := e.sim.AddContactByWay(e.ctx, c.ConfigID, wecomtest.Contact{Name: name})
	if err != nil {
		e.t.Fatal(err)
	}
	e.srv.WeComSettled(e.t)
	e.eventually("the add is recorded and the code turned", func() bool {
		got, err := e.svc.Code(e.ctx, e.ws.ID, c.ID)
		if err != nil {
			e.t.Fatal(err)
		}
		way, _ := e.sim.ContactWay(c.ConfigID)
		return e.adds(c.ID) == before+1 && slices.Equal(got.Users, got.WantUsers) && slices.Equal(way.Users, got.Users)
	})
	e.settled()
	return res
}

// settled waits until no callback is pending: its observers (tags, remark,
// the code's update) have all run, whichever worker took it.
func (e *env) settled() {
	e.t.Helper()
	e.eventually("callbacks processed", func() bool {
		e.srv.WeComSettled(e.t)
		var n int
		if err := e.srv.App.DB.QueryRowContext(e.ctx, `SELECT count(*) FROM wecom_inbox WHERE tenant_id = $1 AND status = 'pending'`, e.ws.ID).Scan(&n); err != nil {
			e.t.Fatal(err)
		}
		return n == 0
	})
}

func (e *env) adds(codeID int64) int {
	var n int
	if err := e.srv.App.DB.QueryRowContext(e.ctx, `SELECT count(*) FROM acquire_events WHERE tenant_id = $1 AND code_id = $2 AND kind = 'add'`,
		e.ws.ID, codeID).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *env) eventually(what string, ok func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if errs.CodeOf(err) != code {
		t.Fatalf("got %v, want code %s", err, code)
	}
}

func TestCodeLifecycle(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		base := func() acquire.CodeInput {
			return acquire.CodeInput{Name: "门店收银台", Source: acquire.SourceStore, State: "checkout_sh01",
				Config: acquire.CodeConfig{SkipVerify: true, Staff: []acquire.StaffRule{{UserID: "alice"}, {UserID: "bob"}}}}
		}
		for _, tc := range []struct {
			name string
			edit func(*acquire.CodeInput)
			code string
		}{
			{"state over 30 characters", func(in *acquire.CodeInput) { in.State = strings.Repeat("s", 31) }, "state_too_long"},
			{"unknown staff", func(in *acquire.CodeInput) { in.Config.Staff[1].UserID = "zoe" }, "unknown_staff"},
			{"cap 0", func(in *acquire.CodeInput) { in.Config.Staff[0].DailyCap = ptr(0) }, "invalid_cap"},
			{"weight 0", func(in *acquire.CodeInput) { in.Config.Staff[0].Weight = ptr(0) }, "invalid_weight"},
			{"unknown tag", func(in *acquire.CodeInput) { in.Config.TagIDs = []int64{999999} }, "unknown_tag"},
		} {
			in := base()
			tc.edit(&in)
			_, err := e.svc.Create(e.ctx, e.p, in)
			wantCode(t, err, tc.code)
		}
		if n := e.sim.ContactWays(); n != 0 {
			t.Fatalf("bad input reached WeCom: %d codes", n)
		}
		// WeCom's refusal comes back explained; nothing is stored.
		e.sim.FailNext("externalcontact/add_contact_way", wecom.CodeNoPrivilege, 1)
		_, err := e.svc.Create(e.ctx, e.p, base())
		if fe, ok := errs.As(err); !ok || fe.Code != "wecom_60011" || fe.Message != wecom.Explain(wecom.CodeNoPrivilege) {
			t.Fatalf("WeCom's refusal: %v", err)
		}
		if list, _ := e.svc.Codes(e.ctx, e.ws.ID, acquire.Filter{}, pageOf(10)); len(list.Items) != 0 {
			t.Fatalf("a refused code was stored: %+v", list.Items)
		}
		c := e.create(base())
		way, ok := e.sim.ContactWay(c.ConfigID)
		if !ok || way.Type != 2 || way.Scene != 2 || way.State != "checkout_sh01" || !way.SkipVerify || !slices.Equal(way.Users, []string{"alice"}) {
			t.Fatalf("WeCom's code: %+v %v", way, ok)
		}
		if c.QRCode == "" || !slices.Equal(c.Users, []string{"alice"}) {
			t.Fatalf("stored code: %+v", c)
		}
		_, err = e.svc.Create(e.ctx, e.p, base())
		wantCode(t, err, "state_taken")

		in := base()
		in.Name, in.Config.SkipVerify = "收银台 2", false
		in.Config.Staff = []acquire.StaffRule{{UserID: "carol"}}
		up, err := e.svc.Update(e.ctx, e.p, c.ID, in)
		if err != nil {
			t.Fatal(err)
		}
		way, _ = e.sim.ContactWay(c.ConfigID)
		if up.Name != "收银台 2" || way.SkipVerify || !slices.Equal(way.Users, []string{"carol"}) || way.QRCode != c.QRCode {
			t.Fatalf("after update: %+v, WeCom %+v", up, way)
		}

		list, err := e.svc.Codes(e.ctx, e.ws.ID, acquire.Filter{}, pageOf(10))
		if err != nil || len(list.Items) != 1 || list.Items[0].ID != c.ID {
			t.Fatalf("list: %+v %v", list, err)
		}
		if err := e.svc.Delete(e.ctx, e.p, c.ID); err != nil {
			t.Fatal(err)
		}
		if _, ok := e.sim.ContactWay(c.ConfigID); ok {
			t.Fatal("the code is still in WeCom")
		}
		if list, _ := e.svc.Codes(e.ctx, e.ws.ID, acquire.Filter{}, pageOf(10)); len(list.Items) != 0 {
			t.Fatalf("a deleted code is listed: %+v", list.Items)
		}
		_, err = e.svc.Update(e.ctx, e.p, c.ID, base())
		wantCode(t, err, "code_deleted")
	})
}

func TestRotation(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		weighted := e.create(acquire.CodeInput{Name: "ad", Source: acquire.SourceAd, State: "ad_1",
			Config: acquire.CodeConfig{Staff: []acquire.StaffRule{{UserID: "alice", Weight: ptr(3)}, {UserID: "bob", Weight: ptr(1)}}}})
		var got []string
		for i := range 8 {
			got = append(got, e.scan(weighted, fmt.Sprintf("w%d", i)).Follow.UserID)
		}
		n := map[string]int{}
		for _, u := range got {
			n[u]++
		}
		if n["alice"] != 6 || n["bob"] != 2 {
			t.Fatalf("weights 3:1 over 8 adds: %v", got)
		}

		rr := e.create(acquire.CodeInput{Name: "live", Source: acquire.SourceLive, State: "live_1",
			Config: acquire.CodeConfig{Mode: acquire.ModeRoundRobin, Staff: []acquire.StaffRule{{UserID: "alice"}, {UserID: "bob"}, {UserID: "carol"}}}})
		got = nil
		for i := range 6 {
			got = append(got, e.scan(rr, fmt.Sprintf("r%d", i)).Follow.UserID)
		}
		if want := []string{"alice", "bob", "carol", "alice", "bob", "carol"}; !slices.Equal(got, want) {
			t.Fatalf("round robin: %v, want %v", got, want)
		}
	})
}

func TestCapsBackupAndSchedule(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		c := e.create(acquire.CodeInput{Name: "parcel", Source: acquire.SourceParcel, State: "parcel_1",
			Config: acquire.CodeConfig{Staff: []acquire.StaffRule{{UserID: "alice", DailyCap: ptr(1)}, {UserID: "bob", DailyCap: ptr(2)},
				{UserID: "dave", Backup: true}}}})
		var got []string
		for i := range 5 {
			got = append(got, e.scan(c, fmt.Sprintf("p%d", i)).Follow.UserID)
		}
		// alice's cap of 1 is reached at once: bob takes over; at his cap
		// of 2 the backup gets the rest.
		if want := []string{"alice", "bob", "bob", "dave", "dave"}; !slices.Equal(got, want) {
			t.Fatalf("caps and backup: %v, want %v", got, want)
		}

		// A staff member off schedule today (workspace time) is skipped.
		loc := e.ws.Location()
		today := int(time.Now().In(loc).Weekday())
		if today == 0 {
			today = 7
		}
		other := today%7 + 1
		s := e.create(acquire.CodeInput{Name: "event", Source: acquire.SourceEvent, State: "event_1",
			Config: acquire.CodeConfig{Staff: []acquire.StaffRule{
				{UserID: "alice", Schedule: []acquire.ShiftWindow{{Days: []int{other}, Start: "00:00", End: "24:00"}}},
				{UserID: "carol", Schedule: []acquire.ShiftWindow{{Days: []int{today}, Start: "00:00", End: "24:00"}}}}}})
		if !slices.Equal(s.Users, []string{"carol"}) {
			t.Fatalf("scheduled staff: the code routes to %v, want carol", s.Users)
		}
		for i := range 2 {
			if who := e.scan(s, fmt.Sprintf("s%d", i)).Follow.UserID; who != "carol" {
				t.Fatalf("add %d went to %s, off schedule", i, who)
			}
		}
		// The worker's pass changes nothing while everyone is where they should be.
		if n, err := e.svc.Rebalance(e.ctx); err != nil || n != 0 {
			t.Fatalf("rebalance: %d %v", n, err)
		}
	})
}

func TestAddAppliesTagsRemarkAndAttribution(t *testing.T) {
	for _, engine := range dbtest.Engines() {
		t.Run(string(engine), func(t *testing.T) {
			var bound, local tag.Tag
			e := newEnv(t, engine, func(e *env) {
				tags := e.srv.App.Tags
				g, err := tags.CreateGroup(e.ctx, e.p, tag.GroupInput{Name: "渠道"})
				if err != nil {
					t.Fatal(err)
				}
				if bound, err = tags.CreateTag(e.ctx, e.p, tag.TagInput{GroupID: g.ID, Name: "门店扫码"}); err != nil {
					t.Fatal(err)
				}
				g2, err := tags.CreateGroup(e.ctx, e.p, tag.GroupInput{Name: "活动"})
				if err != nil {
					t.Fatal(err)
				}
				if local, err = tags.CreateTag(e.ctx, e.p, tag.TagInput{GroupID: g2.ID, Name: "双11"}); err != nil {
					t.Fatal(err)
				}
			})
			tags := e.srv.App.Tags
			g, _ := tags.Group(e.ctx, e.ws.ID, bound.GroupID)
			if _, err := e.srv.App.WeCom.BindTagGroup(e.ctx, e.p, g.ID, wecom.BindTagGroupInput{}); err != nil {
				t.Fatal(err)
			}
			e.srv.WeComSyncDone(t, e.ws)
			corpTag, ok := e.sim.TagByName("渠道", "门店扫码")
			if !ok {
				t.Fatal("the bound tag is not in WeCom")
			}
			c := e.create(acquire.CodeInput{Name: "收银台", Source: acquire.SourceStore, State: "store_sh",
				Config: acquire.CodeConfig{Staff: []acquire.StaffRule{{UserID: "alice"}}, TagIDs: []int64{bound.ID, local.ID},
					RemarkTemplate: "{{customer_name}}-门店", DescriptionTemplate: "来自 {{code_name}}，由 {{staff_name}} 接待"}})
			res := e.scan(c, "小红")
			ext := res.Contact.ExternalUserID

			var customerID int64
			if err := e.srv.App.DB.QueryRowContext(e.ctx, `SELECT customer_id FROM acquire_customers WHERE tenant_id = $1 AND code_id = $2`,
				e.ws.ID, c.ID).Scan(&customerID); err != nil {
				t.Fatalf("attribution: %v", err)
			}
			held, err := tags.TagsOf(e.ctx, e.ws.ID, customerID)
			if err != nil {
				t.Fatal(err)
			}
			var ids []int64
			for _, a := range held {
				ids = append(ids, a.TagID)
				if a.Source != tag.SourceCode {
					t.Fatalf("tag applied with source %s, want code", a.Source)
				}
			}
			slices.Sort(ids)
			if want := []int64{bound.ID, local.ID}; !slices.Equal(ids, slices.Sorted(slices.Values(want))) {
				t.Fatalf("tags %v, want %v", ids, want)
			}
			e.eventually("the bound tag is marked in WeCom and the remark set", func() bool {
				_, follows, _ := e.sim.Contact(ext)
				return len(follows) == 1 && slices.Contains(follows[0].TagIDs, corpTag.ID) &&
					follows[0].Remark == "小红-门店" && follows[0].Description == "来自 收银台，由 Alice 接待"
			})

			// The same customer scanning another code later keeps the first
			// code; the later add is still recorded.
			c2 := e.create(acquire.CodeInput{Name: "直播", Source: acquire.SourceLive, State: "live_x",
				Config: acquire.CodeConfig{Staff: []acquire.StaffRule{{UserID: "bob"}}}})
			if _, err := e.sim.AddContactByWay(e.ctx, c2.ConfigID, wecomtest.Contact{ExternalUserID: ext}); err != nil {
				t.Fatal(err)
			}
			e.settled()
			e.eventually("the second add", func() bool { return e.adds(c2.ID) == 1 })
			var first int64
			if err := e.srv.App.DB.QueryRowContext(e.ctx, `SELECT code_id FROM acquire_customers WHERE tenant_id = $1 AND customer_id = $2`,
				e.ws.ID, customerID).Scan(&first); err != nil || first != c.ID {
				t.Fatalf("the customer's code: %d %v, want %d", first, err, c.ID)
			}

			// A redelivered callback records nothing twice.
			cbs := e.sim.Callbacks()
			if err := e.sim.Redeliver(e.ctx, cbs[len(cbs)-1].Seq); err != nil {
				t.Fatal(err)
			}
			e.settled()
			if n := e.adds(c2.ID); n != 1 {
				t.Fatalf("a redelivered add counted %d times", n)
			}
		})
	}
}

func TestStatsAndDeletions(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		c := e.create(acquire.CodeInput{Name: "ad", Source: acquire.SourceAd, State: "ad_s",
			Config: acquire.CodeConfig{Staff: []acquire.StaffRule{{UserID: "alice"}}}})
		var exts []string
		for i := range 3 {
			exts = append(exts, e.scan(c, fmt.Sprintf("c%d", i)).Contact.ExternalUserID)
		}
		if err := e.sim.CustomerDeletesStaff(e.ctx, "alice", exts[2]); err != nil {
			t.Fatal(err)
		}
		e.settled()
		e.eventually("the deletion is counted", func() bool {
			st, err := e.svc.Stats(e.ctx, e.ws.ID, c.ID, "", "")
			return err == nil && st.Total.Deletions == 1
		})
		var customerID int64
		if err := e.srv.App.DB.QueryRowContext(e.ctx, `SELECT customer_id FROM acquire_events WHERE tenant_id = $1 AND external_userid = $2 AND kind = 'add'`,
			e.ws.ID, exts[0]).Scan(&customerID); err != nil {
			t.Fatal(err)
		}
		for i, fen := range []int64{12800, 5000} {
			if _, err := e.srv.App.Commerce.UpsertOrder(e.ctx, e.ws.ID, commerce.OrderInput{Source: commerce.SourceMiniApp, OrderID: fmt.Sprintf("o%d", i),
				CustomerID: customerID, Status: commerce.Paid, PaidAt: time.Now().Add(time.Minute),
				Items: []commerce.ItemInput{{SKU: "tea", Name: "茶", Quantity: 1, UnitPriceFen: fen}}}); err != nil {
				t.Fatal(err)
			}
		}
		st, err := e.svc.Stats(e.ctx, e.ws.ID, c.ID, "", "")
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Days) != 30 {
			t.Fatalf("default range: %d days", len(st.Days))
		}
		want := acquire.CodeDay{Adds: 3, Deletions: 1, Net: 2, FirstOrders: 1, SpendFen: 17800}
		if got := st.Total; got != want {
			t.Fatalf("totals %+v, want %+v", got, want)
		}
		todayStr := time.Now().Add(time.Minute).In(e.ws.Location()).Format(time.DateOnly)
		if d := st.Days[len(st.Days)-1]; d.Day == todayStr && d.Adds != 3 {
			t.Fatalf("today: %+v", d)
		}
		all, err := e.svc.Stats(e.ctx, e.ws.ID, 0, "", "")
		if err != nil || all.Total != want {
			t.Fatalf("all codes: %+v %v", all.Total, err)
		}
		if got, _ := e.svc.Code(e.ctx, e.ws.ID, c.ID); got.TodayAdds != 3 {
			t.Fatalf("today's adds: %d", got.TodayAdds)
		}
		_, err = e.svc.Stats(e.ctx, e.ws.ID, c.ID, "2026-02-30", "")
		wantCode(t, err, "invalid_date")
	})
}

func TestStoreCodes(t *testing.T) {
	for _, engine := range dbtest.Engines() {
		t.Run(string(engine), func(t *testing.T) {
			var stores []staff.Store
			e := newEnv(t, engine, func(e *env) {
				st := e.srv.App.Staff
				for i, code := range []string{"SH01", "SH02", "BJ01"} {
					s, err := st.CreateStore(e.ctx, e.ws.ID, staff.Store{Code: code, Name: "店 " + code})
					if err != nil {
						t.Fatal(err)
					}
					stores = append(stores, s)
					if i == 2 {
						continue // BJ01 has no staff
					}
					for _, u := range [][]string{{"alice", "bob"}, {"carol"}}[i] {
						if _, err := st.CreateMember(e.ctx, e.ws.ID, staff.Member{Name: staffNames[u], StoreID: s.ID, WeComUserID: u, Status: staff.Active}); err != nil {
							t.Fatal(err)
						}
					}
				}
			})
			var progress []int
			res, err := e.svc.CreateStoreCodes(e.ctx, e.p, acquire.StoreCodesInput{DailyCap: ptr(50),
				Config: acquire.CodeConfig{SkipVerify: true, Welcome: message.Content{Text: "欢迎光临"}}}, func(done, total int) { progress = append(progress, done) })
			if err != nil {
				t.Fatal(err)
			}
			status := map[string]string{}
			for _, r := range res {
				status[r.StoreCode] = r.Status
			}
			if status["SH01"] != acquire.StoreCreated || status["SH02"] != acquire.StoreCreated || status["BJ01"] != acquire.StoreNoStaff || len(progress) != 3 {
				t.Fatalf("store codes: %+v (progress %v)", res, progress)
			}
			c, err := e.svc.Code(e.ctx, e.ws.ID, res[0].CodeID)
			if err != nil {
				t.Fatal(err)
			}
			if c.StoreID != stores[0].ID || c.State != "store_SH01" || c.Source != acquire.SourceStore || len(c.Config.Staff) != 2 {
				t.Fatalf("store code: %+v", c)
			}
			if got := []string{e.scan(c, "a").Follow.UserID, e.scan(c, "b").Follow.UserID}; !slices.Equal(got, []string{"alice", "bob"}) {
				t.Fatalf("the store's staff take turns: %v", got)
			}
			// Re-running skips the stores that have a code.
			again, err := e.svc.CreateStoreCodes(e.ctx, e.p, acquire.StoreCodesInput{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range again {
				if r.StoreCode != "BJ01" && (r.Status != acquire.StoreSkipped || r.CodeID == 0) {
					t.Fatalf("re-run: %+v", again)
				}
			}
			if n := e.sim.ContactWays(); n != 2 {
				t.Fatalf("WeCom has %d codes, want 2", n)
			}
		})
	}
}

func TestQRDownload(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		c := e.create(acquire.CodeInput{Name: "poster", Source: acquire.SourceOther, State: "poster",
			Config: acquire.CodeConfig{Staff: []acquire.StaffRule{{UserID: "alice"}}}})
		raw, err := e.svc.QR(e.ctx, e.ws.ID, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		e.sim.Close() // cached: no second fetch
		for _, size := range acquire.PrintSizes()[:2] {
			b, err := e.svc.QRPrint(e.ctx, e.ws.ID, c.ID, size.Pixels)
			if err != nil {
				t.Fatal(err)
			}
			img, err := png.Decode(bytes.NewReader(b))
			if err != nil || img.Bounds().Dx() != size.Pixels || img.Bounds().Dy() != size.Pixels {
				t.Fatalf("%s: %v %v", size.Name, img.Bounds(), err)
			}
		}
		if again, err := e.svc.QR(e.ctx, e.ws.ID, c.ID); err != nil || !bytes.Equal(again, raw) {
			t.Fatalf("cached QR: %v", err)
		}
		_, err = e.svc.QRPrint(e.ctx, e.ws.ID, c.ID, 10)
		wantCode(t, err, "invalid_size")
	})
}

func pageOf(n int) page.Request { return page.Request{Limit: n} }

// welcomeKey is the outbox key of the welcome message of a code's add.
func (e *env) welcomeKey(codeID int64, ext string) string {
	e.t.Helper()
	var key string
	if err := e.srv.App.DB.QueryRowContext(e.ctx, `SELECT event_key FROM acquire_events WHERE tenant_id = $1 AND code_id = $2 AND external_userid = $3 AND kind = 'add'`,
		e.ws.ID, codeID, ext).Scan(&key); err != nil {
		e.t.Fatal(err)
	}
	return "acquire:" + strings.TrimPrefix(key, "add:")
}

func TestWelcomeMessage(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		c := e.create(acquire.CodeInput{Name: "包裹卡", Source: acquire.SourceParcel, State: "parcel_w",
			Config: acquire.CodeConfig{Staff: []acquire.StaffRule{{UserID: "bob"}}, Welcome: message.Content{
				Text:        "你好 {{customer_name}}，我是 {{staff_name}}，有问题随时找我",
				Attachments: []message.Attachment{{Kind: "link", Title: "会员中心", URL: "https://brand.example/member"}}}}})
		ext := e.scan(c, "小明").Contact.ExternalUserID
		var got []wecomtest.WelcomeSent
		e.eventually("the welcome message reaches WeCom", func() bool {
			got = nil
			for _, w := range e.sim.WelcomeMessages() {
				if w.ExternalUserID == ext {
					got = append(got, w)
				}
			}
			return len(got) > 0
		})
		m := got[0].Message
		if len(got) != 1 || got[0].UserID != "bob" || m.Text == nil || m.Text.Content != "你好 小明，我是 Bob，有问题随时找我" ||
			len(m.Attachments) != 1 || m.Attachments[0].MsgType != "link" {
			t.Fatalf("welcome: %+v", got)
		}
		var rec message.EnvelopeRecord
		e.eventually("the welcome is recorded sent", func() bool {
			var err error
			rec, err = e.srv.App.Messages.EnvelopeByKey(e.ctx, e.ws.ID, e.welcomeKey(c.ID, ext))
			return err == nil && rec.Status == message.StatusSent
		})
		if rec.Source != "acquire.code" || rec.Account != "bob" || rec.Params["welcome_code"] == "" || rec.NotAfter.IsZero() {
			t.Fatalf("envelope: %+v", rec)
		}

		// An add whose callback is handled after the 20-second window: the
		// outbox records the welcome as expired and sends nothing.
		e.sim.Advance(-30 * time.Second)
		late := e.scan(c, "小李").Contact.ExternalUserID
		key := e.welcomeKey(c.ID, late)
		e.eventually("the late welcome is recorded expired", func() bool {
			rec, err := e.srv.App.Messages.EnvelopeByKey(e.ctx, e.ws.ID, key)
			return err == nil && rec.Status == message.StatusExpired
		})
		for _, w := range e.sim.WelcomeMessages() {
			if w.ExternalUserID == late {
				t.Fatalf("a welcome past its window was sent: %+v", w)
			}
		}
	})
}

// TestRebalanceAtBoundaries moves the clock of a second service on the
// same database: a schedule window closing hands the code to the backup,
// and a new day lifts the caps reached the day before.
func TestRebalanceAtBoundaries(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		a := e.srv.App
		at := time.Now()
		clock := func(t time.Time) *acquire.Service {
			return acquire.NewService(acquire.Options{DB: a.DB, WeCom: a.WeCom, Tags: a.Tags, Tenant: a.Tenant, Staff: a.Staff,
				Customers: a.Customers, Messages: a.Messages, Now: func() time.Time { return t }})
		}
		users := func(c acquire.ChannelCode) string {
			got, err := e.svc.Code(e.ctx, e.ws.ID, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			way, _ := e.sim.ContactWay(c.ConfigID)
			if !slices.Equal(got.Users, way.Users) {
				t.Fatalf("Siyu routes to %v, WeCom to %v", got.Users, way.Users)
			}
			return strings.Join(way.Users, ",")
		}

		// A cap reached today: the backup holds the code until tomorrow.
		capped := e.create(acquire.CodeInput{Name: "cap", Source: acquire.SourceAd, State: "cap_1",
			Config: acquire.CodeConfig{Staff: []acquire.StaffRule{{UserID: "alice", DailyCap: ptr(1)}, {UserID: "dave", Backup: true}}}})
		e.scan(capped, "x")
		if got := users(capped); got != "dave" {
			t.Fatalf("after alice's cap: %s", got)
		}
		if _, err := clock(at).Rebalance(e.ctx); err != nil {
			t.Fatal(err)
		}
		if got := users(capped); got != "dave" {
			t.Fatalf("still capped today: %s", got)
		}
		if _, err := clock(at.Add(24 * time.Hour)).Rebalance(e.ctx); err != nil {
			t.Fatal(err)
		}
		if got := users(capped); got != "alice" {
			t.Fatalf("a new day lifts the cap: %s", got)
		}

		// A schedule window from the next full hour for one hour (workspace
		// time): before it the backup, within it bob, after it the backup.
		loc := e.ws.Location()
		start := at.In(loc).Truncate(time.Hour).Add(time.Hour)
		if start.Hour() == 23 {
			start = start.Add(2 * time.Hour) // keep the window within one day
		}
		day := int(start.Weekday())
		if day == 0 {
			day = 7
		}
		win := acquire.ShiftWindow{Days: []int{day}, Start: start.Format("15:04"), End: start.Add(time.Hour).Format("15:04")}
		sched := e.create(acquire.CodeInput{Name: "shift", Source: acquire.SourceEvent, State: "shift_1",
			Config: acquire.CodeConfig{Staff: []acquire.StaffRule{{UserID: "bob", Schedule: []acquire.ShiftWindow{win}}, {UserID: "dave", Backup: true}}}})
		for _, step := range []struct {
			at   time.Time
			want string
		}{{start.Add(-time.Minute), "dave"}, {start, "bob"}, {start.Add(59 * time.Minute), "bob"}, {start.Add(time.Hour), "dave"}} {
			if _, err := clock(step.at).Rebalance(e.ctx); err != nil {
				t.Fatal(err)
			}
			if got := users(sched); got != step.want {
				t.Fatalf("at %s: %s, want %s", step.at.In(loc).Format("Mon 15:04"), got, step.want)
			}
		}
	})
}

// TestMergeKeepsTheFirstCode: when two customers merge, the survivor keeps
// the code that brought either of them first, and their adds follow.
func TestMergeKeepsTheFirstCode(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		early := e.create(acquire.CodeInput{Name: "early", Source: acquire.SourceAd, State: "early",
			Config: acquire.CodeConfig{Staff: []acquire.StaffRule{{UserID: "alice"}}}})
		late := e.create(acquire.CodeInput{Name: "late", Source: acquire.SourceAd, State: "late",
			Config: acquire.CodeConfig{Staff: []acquire.StaffRule{{UserID: "bob"}}}})
		a := e.scan(early, "甲").Contact.ExternalUserID
		e.sim.Advance(2 * time.Second) // WeCom's event times are in seconds
		b := e.scan(late, "乙").Contact.ExternalUserID
		id := func(ext string) int64 {
			var n int64
			if err := e.srv.App.DB.QueryRowContext(e.ctx, `SELECT customer_id FROM acquire_events WHERE tenant_id = $1 AND external_userid = $2`, e.ws.ID, ext).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		from, to := id(a), id(b) // the early customer merges into the late one
		err := e.srv.App.DB.Tx(e.ctx, func(tx *sql.Tx) error { return e.svc.MoveCustomer(e.ctx, tx, e.ws.ID, from, to) })
		if err != nil {
			t.Fatal(err)
		}
		var code, n int64
		if err := e.srv.App.DB.QueryRowContext(e.ctx, `SELECT code_id FROM acquire_customers WHERE tenant_id = $1 AND customer_id = $2`, e.ws.ID, to).Scan(&code); err != nil || code != early.ID {
			t.Fatalf("the survivor's code: %d %v, want %d", code, err, early.ID)
		}
		if err := e.srv.App.DB.QueryRowContext(e.ctx, `SELECT count(*) FROM acquire_events WHERE tenant_id = $1 AND customer_id = $2`, e.ws.ID, to).Scan(&n); err != nil || n != 2 {
			t.Fatalf("the survivor's adds: %d %v", n, err)
		}
		if err := e.srv.App.DB.QueryRowContext(e.ctx, `SELECT count(*) FROM acquire_customers WHERE tenant_id = $1`, e.ws.ID).Scan(&n); err != nil || n != 1 {
			t.Fatalf("attributions: %d %v", n, err)
		}
	})
}
