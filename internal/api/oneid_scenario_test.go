package api_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/siyu-dev/siyu/internal/app/apptest"
	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// The scenario, through the surfaces a brand's systems use: an
// anonymous mini-program visitor browses, signs in with a phone number, is
// later seen on WeCom (unionid + external_userid, then linked to the same
// phone), and buys on Tmall (shop buyer id + phone). One profile holds every
// identifier, every event and the order on one timeline, with the merge
// recorded; re-sending the batch adds nothing.
func TestOneIDScenarioEndToEnd(t *testing.T) {
	eachServer(t, func(t *testing.T, s *apptest.Server) {
		w := s.NewWorkspace(t, "oneid-e2e")
		ctx := t.Context()
		wk, err := s.App.Events.CreateWriteKey(ctx, tenant.System(w.ID), "mini program")
		if err != nil {
			t.Fatal(err)
		}
		batch := map[string]any{"batch": []map[string]any{
			{"type": "page", "messageId": "m1", "anonymousId": "anon-7f3a", "name": "首页", "timestamp": "2026-11-01T02:00:00Z"},
			{"type": "track", "messageId": "m2", "anonymousId": "anon-7f3a", "event": "view_product",
				"properties": map[string]any{"sku": "TEA-MAT-01", "category": "抹茶"}, "timestamp": "2026-11-01T02:01:00Z"},
			{"type": "identify", "messageId": "m3", "anonymousId": "anon-7f3a", "userId": "u-42",
				"traits": map[string]any{"phone": "138 0013 8000", "name": "王芳"}, "timestamp": "2026-11-01T02:02:00Z"},
			// WeCom first knows the person only by unionid and external_userid …
			{"type": "identify", "messageId": "m4", "anonymousId": "wecom:wmExt42", "timestamp": "2026-11-02T03:00:00Z",
				"context": map[string]any{"externalIds": []map[string]any{
					{"id": "oUnion42", "type": "wechat_unionid"}, {"id": "wmExt42", "type": "wecom_external_userid"}}}},
			// … then learns the phone, which joins the two profiles.
			{"type": "identify", "messageId": "m5", "anonymousId": "wecom:wmExt42", "timestamp": "2026-11-02T03:05:00Z",
				"traits":  map[string]any{"phone": "+86 138-0013-8000"},
				"context": map[string]any{"externalIds": []map[string]any{{"id": "oUnion42", "type": "wechat_unionid"}}}},
		}}
		body, _ := json.Marshal(batch)
		send := func() {
			req, _ := http.NewRequest("POST", s.URL+"/v1/batch", bytes.NewReader(body))
			req.SetBasicAuth(wk.Key, "")
			req.Header.Set("Content-Type", "application/json")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != 200 {
				t.Fatalf("batch: %d", res.StatusCode)
			}
		}
		send()
		// The Tmall order names the buyer by shop id and phone.
		r := s.Do(t, "PUT", "/api/v1/orders/tmall/T-9001", w.Key, `{"customer": {"shop_buyer_id": "tmall:buyer-9", "phone": "13800138000"},
			"status": "paid", "paid_at": "2026-11-03T10:00:00Z", "items": [{"sku": "GFT-BOX-01", "name": "茶礼盒", "quantity": 1, "unit_price_fen": 16800}]}`)
		if r.Status != 201 {
			t.Fatalf("order: %d %s", r.Status, r.Body)
		}

		want := map[string]string{customer.KindAnonymousID: "anon-7f3a", customer.KindUserID: "u-42", customer.KindUnionID: "oUnion42",
			customer.KindWeComExtID: "wmExt42", customer.KindShopBuyerID: "tmall:buyer-9"}
		var detail struct {
			ID         int64               `json:"id"`
			Name       string              `json:"name"`
			Phone      string              `json:"phone"`
			Identities []customer.Identity `json:"identities"`
		}
		deadline := time.Now().Add(15 * time.Second)
		for {
			var list struct{ Items []customer.Customer }
			s.Do(t, "GET", "/api/v1/customers?identifier=wechat_unionid:oUnion42", w.Key, nil).JSON(t, &list)
			if len(list.Items) == 1 {
				s.Do(t, "GET", "/api/v1/customers/"+jsonInt(list.Items[0].ID), w.Key, nil).JSON(t, &detail)
				if len(detail.Identities) >= len(want)+1 {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("events not resolved in time; profile %+v", detail)
			}
			time.Sleep(50 * time.Millisecond)
		}
		got := map[string][]string{}
		for _, i := range detail.Identities {
			got[i.Kind] = append(got[i.Kind], i.Value)
		}
		for k, v := range want {
			if !slices.Contains(got[k], v) {
				t.Errorf("identity %s:%s missing; identities %v", k, v, detail.Identities)
			}
		}
		if detail.Name != "王芳" || detail.Phone != "+8613800138000" {
			t.Errorf("profile %+v", detail)
		}
		// Everyone named in the scenario is this one person.
		for _, ident := range []string{"user_id:u-42", "anonymous_id:anon-7f3a", "phone:13800138000", "shop_buyer_id:tmall:buyer-9", "wecom_external_userid:wmExt42"} {
			var list struct{ Items []customer.Customer }
			s.Do(t, "GET", "/api/v1/customers?identifier="+ident, w.Key, nil).JSON(t, &list)
			if len(list.Items) != 1 || list.Items[0].ID != detail.ID {
				t.Errorf("%s resolves to %+v, want customer %d", ident, list.Items, detail.ID)
			}
		}
		var tl struct{ Items []customer.TimelineEntry }
		s.Do(t, "GET", "/api/v1/customers/"+jsonInt(detail.ID)+"/timeline?limit=50", w.Key, nil).JSON(t, &tl)
		kinds := map[string]int{}
		var titles []string
		merged := map[string]bool{}
		for _, e := range tl.Items {
			kinds[e.Kind]++
			titles = append(titles, e.Title)
			if e.Kind == "merge" {
				if merged[e.ID] {
					t.Errorf("profile %s merged twice", e.ID)
				}
				merged[e.ID] = true
			}
		}
		// How many profiles existed before they met depends on whether the
		// order arrived before the events were processed; at least the WeCom
		// profile was merged, each profile once.
		if kinds["order"] != 1 || kinds["merge"] < 1 || kinds["event"] != 5 {
			t.Errorf("timeline kinds %v: %s", kinds, strings.Join(titles, " | "))
		}

		// A client retrying the whole batch creates nothing twice.
		var before, after int
		s.App.DB.QueryRowContext(ctx, `SELECT count(*) FROM events WHERE tenant_id = $1`, w.ID).Scan(&before)
		send()
		s.App.DB.QueryRowContext(ctx, `SELECT count(*) FROM events WHERE tenant_id = $1`, w.ID).Scan(&after)
		if before != 5 || after != 5 {
			t.Fatalf("events before %d, after re-send %d; want 5 and 5", before, after)
		}
	})
}

func jsonInt(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
