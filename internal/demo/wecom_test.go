package demo_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/siyu-dev/siyu/internal/acquire"
	"github.com/siyu-dev/siyu/internal/app/apptest"
	"github.com/siyu-dev/siyu/internal/connector/wecom"
	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/demo"
	"github.com/siyu-dev/siyu/internal/page"
	"github.com/siyu-dev/siyu/internal/staff"
	"github.com/siyu-dev/siyu/internal/tag"
	"github.com/siyu-dev/siyu/internal/tenant"
)

type logWriter struct{ t *testing.T }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// The demo's WeCom corp, run against a small brand: once set up, every
// contact of the corp is a Siyu customer, the mini-program members among
// them are the customers Siyu knew, the corp tag groups are bound to the
// brand's, and live events keep arriving as callbacks that become customers.
func TestDemoWeComCorp(t *testing.T) {
	s := apptest.Start(t, db.SQLite)
	ws := s.NewWorkspace(t, "brand")
	ctx := context.Background()
	sys := tenant.System(ws.ID)
	for _, code := range []string{"SH-01", "HZ-01"} {
		st, err := s.App.Staff.CreateStore(ctx, ws.ID, staff.Store{Code: code, Name: code + "店", City: code[:2]})
		if err != nil {
			t.Fatal(err)
		}
		for j, title := range []string{"店长", "导购", "导购"} {
			if _, err := s.App.Staff.CreateMember(ctx, ws.ID, staff.Member{Name: fmt.Sprintf("%s员工%d", code, j), Title: title, StoreID: st.ID,
				WeComUserID: fmt.Sprintf("%s%d", code, j+1)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	var batch []customer.NewCustomer
	for i := range 30 {
		batch = append(batch, customer.NewCustomer{Name: fmt.Sprintf("会员%02d", i), FirstSource: "miniapp",
			Identities: []customer.Identity{{Kind: customer.KindUserID, Value: fmt.Sprintf("m%07d", 1000000+i)}}})
	}
	if _, err := s.App.Customers.CreateMany(ctx, ws.ID, batch); err != nil {
		t.Fatal(err)
	}
	for _, g := range []struct {
		name string
		tags []string
	}{{"客户属性", []string{"学生", "白领", "宝妈"}}, {"产品偏好", []string{"乌龙", "抹茶"}}} {
		grp, err := s.App.Tags.CreateGroup(ctx, sys, tag.GroupInput{Name: g.name})
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range g.tags {
			if _, err := s.App.Tags.CreateTag(ctx, sys, tag.TagInput{GroupID: grp.ID, Name: n}); err != nil {
				t.Fatal(err)
			}
		}
	}

	corp := demo.StartWeCom(s.App, ws.ID, s.URL, demo.WeComOptions{Contacts: 40, Members: 10, Groups: 2, Trickle: 20 * time.Millisecond})
	t.Cleanup(corp.Close)
	if !strings.Contains(corp.Summary(), corp.URL()) || !strings.Contains(corp.CallbackURL(), "/connect/wecom/brand/callback") {
		t.Fatalf("summary %q, callbacks to %s", corp.Summary(), corp.CallbackURL())
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- corp.Run(rctx, logWriter{t}) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	select {
	case <-corp.Ready():
	case err := <-done:
		t.Fatalf("the corp stopped before it was ready: %v", err)
	case <-time.After(2 * time.Minute):
		t.Fatal("the corp was not synced in time")
	}

	// Every contact is a customer; the members are the customers Siyu knew.
	customerOf := func(ext string) (customer.Customer, bool) {
		pg, err := s.App.Customers.List(ctx, ws.ID, customer.Query{Identifier: customer.KindWeComExtID + ":" + ext}, page.Request{})
		if err != nil {
			t.Fatal(err)
		}
		if len(pg.Items) == 0 {
			return customer.Customer{}, false
		}
		return pg.Items[0], true
	}
	merged := 0
	contacts := corp.Server().Contacts()
	if len(contacts) < 30 {
		t.Fatalf("the corp has %d contacts", len(contacts))
	}
	for _, ct := range contacts {
		c, ok := customerOf(ct.ExternalUserID)
		if !ok {
			if strings.HasPrefix(ct.ExternalUserID, "wmTeaTimeLive") {
				continue // a live add still on its way
			}
			t.Fatalf("contact %s (%s) is no customer", ct.ExternalUserID, ct.Name)
		}
		ids, err := s.App.Customers.Identities(ctx, ws.ID, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if slices.ContainsFunc(ids, func(i customer.Identity) bool { return i.Kind == customer.KindUserID }) {
			merged++
			if !slices.Contains(ids, customer.Identity{Kind: customer.KindUnionID, Value: ct.UnionID}) || c.Name != ct.Name {
				t.Fatalf("member %s: %+v, identities %v", ct.ExternalUserID, c, ids)
			}
		}
	}
	if merged < 10 {
		t.Fatalf("%d contacts are mini-program members, want at least 10", merged)
	}
	groups, err := s.App.Tags.Groups(ctx, ws.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range groups {
		if g.WeComGroupID == "" {
			t.Fatalf("tag group %s is not bound to WeCom", g.Name)
		}
	}
	st, err := s.App.WeCom.SyncStatus(ctx, ws.ID)
	if err != nil || st.LastSuccess == nil {
		t.Fatalf("sync status %+v %v", st, err)
	}

	// Live events arrive as callbacks, and the customers they bring appear.
	deadline := time.Now().Add(time.Minute)
	for {
		var live []string
		for _, ct := range corp.Server().Contacts() {
			if strings.HasPrefix(ct.ExternalUserID, "wmTeaTimeLive") {
				live = append(live, ct.ExternalUserID)
			}
		}
		in, err := s.App.WeCom.Inbox(ctx, ws.ID, wecom.InboxQuery{Status: wecom.InboxDone}, page.Request{Limit: 50})
		if err != nil {
			t.Fatal(err)
		}
		found := 0
		for _, ext := range live {
			if _, ok := customerOf(ext); ok {
				found++
			}
		}
		if found >= 2 && len(in.Items) >= 10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a minute of live events: %d processed callbacks, %d of %d live contacts are customers", len(in.Items), found, len(live))
		}
		time.Sleep(100 * time.Millisecond)
	}

	// The operations are set up: a channel code per store, known to WeCom,
	// and a group code over the first group.
	codes, err := s.App.Acquire.Codes(ctx, ws.ID, acquire.Filter{}, page.Request{})
	if err != nil {
		t.Fatal(err)
	}
	stores := 0
	for _, c := range codes.Items {
		if c.StoreID != 0 && c.ConfigID != "" {
			stores++
		}
	}
	if stores != 2 {
		t.Fatalf("%d store codes, want one per store: %+v", stores, codes.Items)
	}
	gcs, err := s.App.Community.GroupCodes(ctx, ws.ID, page.Request{})
	if err != nil || len(gcs.Items) != 1 || gcs.Items[0].ConfigID == "" {
		t.Fatalf("group codes %+v %v", gcs.Items, err)
	}
}
