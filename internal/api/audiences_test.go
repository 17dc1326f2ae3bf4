package api_test

import (
	"database/sql"
	"fmt"
	"testing"

	"github.com/siyu-dev/siyu/internal/app/apptest"
	"github.com/siyu-dev/siyu/internal/customer"
)

func TestAudienceCountAPI(t *testing.T) {
	eachServer(t, func(t *testing.T, s *apptest.Server) {
		w := s.NewWorkspace(t, "aud-api")
		ctx := t.Context()
		err := s.App.DB.Tx(ctx, func(tx *sql.Tx) error {
			for i, city := range []string{"上海", "上海", "杭州"} {
				if _, err := s.App.Customers.Resolve(ctx, tx, w.ID, customer.Observation{
					Identities: []customer.Identity{{Kind: customer.KindUserID, Value: fmt.Sprint("u", i)}}, Traits: map[string]any{"city": city}}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.App.Audiences.Sync(ctx, w.ID); err != nil {
			t.Fatal(err)
		}
		var out struct{ Count int64 }
		r := s.Do(t, "POST", "/api/v1/audiences/count", w.Key, `{"conditions": {"attr": "city", "op": "=", "value": "上海"}}`)
		if r.Status != 200 {
			t.Fatalf("count: %d %s", r.Status, r.Body)
		}
		r.JSON(t, &out)
		if out.Count != 2 {
			t.Fatalf("count %d, want 2", out.Count)
		}
		var bd struct {
			Count   int64
			Buckets []struct {
				Value string
				Count int64
			}
		}
		s.Do(t, "POST", "/api/v1/audiences/breakdown", w.Key, `{"conditions": {"attr": "city", "op": "is_set"}, "by": "city"}`).JSON(t, &bd)
		if bd.Count != 3 || len(bd.Buckets) != 2 || bd.Buckets[0].Value != "上海" || bd.Buckets[0].Count != 2 {
			t.Fatalf("breakdown %+v", bd)
		}
		// Schema errors (an unknown operator) and semantic ones (a range
		// upside down) both point at the bad node in the body.
		p := expectProblem(t, s.Do(t, "POST", "/api/v1/audiences/count", w.Key, `{"conditions": {"and": [{"attr": "city", "op": "=", "value": "上海"}, {"attr": "city", "op": "~", "value": 1}]}}`), 422, "validation_failed")
		if len(p.Errors) != 1 || p.Errors[0].Location != "body.conditions.and[1].op" {
			t.Fatalf("problem %+v", p)
		}
		p = expectProblem(t, s.Do(t, "POST", "/api/v1/audiences/count", w.Key, `{"conditions": {"or": [{"tag": "x"}, {"attr": "total_spend", "op": "between", "value": [9, 1]}]}}`), 422, "invalid_condition")
		if len(p.Errors) != 1 || p.Errors[0].Location != "body.conditions.or[1].value" {
			t.Fatalf("problem %+v", p)
		}
		expectProblem(t, s.Do(t, "POST", "/api/v1/audiences/count", w.Key, `{"conditions": {"attr": "shoe_size", "op": ">", "value": 1}}`), 422, "unknown_attribute")
		// Saved, then listed with its member count.
		r = s.Do(t, "POST", "/api/v1/audiences", w.Key, `{"name": "上海客户", "conditions": {"attr": "city", "op": "=", "value": "上海"}}`)
		if r.Status != 201 {
			t.Fatalf("create: %d %s", r.Status, r.Body)
		}
		var au struct {
			ID          int64 `json:"id"`
			MemberCount int64 `json:"member_count"`
		}
		r.JSON(t, &au)
		if au.MemberCount != 2 {
			t.Fatalf("saved audience %+v", au)
		}
		var members struct{ Items []customer.Customer }
		s.Do(t, "GET", fmt.Sprintf("/api/v1/audiences/%d/members?limit=1", au.ID), w.Key, nil).JSON(t, &members)
		if len(members.Items) != 1 || members.Items[0].City != "上海" {
			t.Fatalf("members %+v", members)
		}
		other := s.NewWorkspace(t, "aud-other")
		expectProblem(t, s.Do(t, "GET", fmt.Sprintf("/api/v1/audiences/%d", au.ID), other.Key, nil), 404, "audience_not_found")
	})
}

// Tags and orders written through the API reach the engine: tags at once
// (the tag service tells the index after commit), spend through its feed.
func TestAudienceSeesTagsAndOrders(t *testing.T) {
	eachServer(t, func(t *testing.T, s *apptest.Server) {
		w := s.NewWorkspace(t, "aud-tags")
		ctx := t.Context()
		mustStatus := func(r apptest.Response, want int) apptest.Response {
			t.Helper()
			if r.Status != want {
				t.Fatalf("status %d, want %d: %s", r.Status, want, r.Body)
			}
			return r
		}
		var group struct{ ID int64 }
		mustStatus(s.Do(t, "POST", "/api/v1/tag-groups", w.Key, `{"name": "价值", "dimension": "value"}`), 201).JSON(t, &group)
		mustStatus(s.Do(t, "POST", "/api/v1/tags", w.Key, fmt.Sprintf(`{"group_id": %d, "name": "高价值"}`, group.ID)), 201)
		// Two buyers through orders (One ID creates them), one of them tagged.
		for i, amount := range []int{12800, 3900} {
			body := fmt.Sprintf(`{"customer": {"user_id": "buyer%d"}, "status": "paid", "paid_at": "2026-11-01T10:00:00Z",
				"items": [{"sku": "tea-%d", "name": "乌龙", "quantity": 1, "unit_price_fen": %d}]}`, i, i, amount)
			mustStatus(s.Do(t, "PUT", fmt.Sprintf("/api/v1/orders/miniapp/o%d", i), w.Key, body), 201)
		}
		var list struct{ Items []customer.Customer }
		s.Do(t, "GET", "/api/v1/customers?identifier=user_id:buyer0", w.Key, nil).JSON(t, &list)
		if len(list.Items) != 1 {
			t.Fatalf("buyer0: %+v", list)
		}
		if err := s.App.Audiences.Build(ctx, w.ID); err != nil {
			t.Fatal(err)
		}
		mustStatus(s.Do(t, "POST", fmt.Sprintf("/api/v1/customers/%d/tags", list.Items[0].ID), w.Key, `{"tags": ["价值/高价值"]}`), 200)
		if err := s.App.Audiences.Sync(ctx, w.ID); err != nil {
			t.Fatal(err)
		}
		count := func(cond string) int64 {
			var out struct{ Count int64 }
			mustStatus(s.Do(t, "POST", "/api/v1/audiences/count", w.Key, `{"conditions": `+cond+`}`), 200).JSON(t, &out)
			return out.Count
		}
		for cond, want := range map[string]int64{
			`{"tag": "价值/高价值"}`:                                                                  1,
			`{"tag": "高价值"}`:                                                                     1,
			`{"attr": "total_spend", "op": ">=", "value": 10000}`:                                1,
			`{"order": {"metric": "count", "op": ">=", "value": 1}}`:                             2,
			`{"and": [{"attr": "order_count", "op": "=", "value": 1}, {"not": {"tag": "高价值"}}]}`: 1,
			// Answered from the order log: a window, a product, and "under" (which
			// includes customers without orders in the window).
			`{"order": {"metric": "spend", "op": ">=", "value": 10000, "within_days": 60}}`: 1,
			`{"order": {"sku": "tea-1"}}`: 1,
			`{"order": {"metric": "count", "op": "<", "value": 1, "within_days": 60}}`: 0,
		} {
			if got := count(cond); got != want {
				t.Errorf("%s: %d, want %d", cond, got, want)
			}
		}
		expectProblem(t, s.Do(t, "POST", "/api/v1/audiences/count", w.Key, `{"conditions": {"tag": "不存在"}}`), 422, "tag_not_found")
	})
}
