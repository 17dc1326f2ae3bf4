package api_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/siyu-dev/siyu/internal/app/apptest"
	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/tag"
	"github.com/siyu-dev/siyu/internal/tenant"
)

func newCustomers(t *testing.T, s *apptest.Server, tenantID int64, n int) []int64 {
	t.Helper()
	in := make([]customer.NewCustomer, n)
	for i := range in {
		in[i] = customer.NewCustomer{Name: fmt.Sprintf("顾客%d", i)}
	}
	ids, err := s.App.Customers.CreateMany(context.Background(), tenantID, in)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func mustStatus(t *testing.T, r apptest.Response, status int) apptest.Response {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d: %s", r.Status, status, r.Body)
	}
	return r
}

func TestTagsAPI(t *testing.T) {
	eachServer(t, func(t *testing.T, s *apptest.Server) {
		w := s.NewWorkspace(t, "tags")
		var value, member tag.Group
		mustStatus(t, s.Do(t, "POST", "/api/v1/tag-groups", w.Key, map[string]any{"name": "价值", "dimension": "value"}), 201).JSON(t, &value)
		mustStatus(t, s.Do(t, "POST", "/api/v1/tag-groups", w.Key, map[string]any{"name": "会员", "dimension": "customer"}), 201).JSON(t, &member)
		if value.Dimension != tag.DimValue || member.SortOrder != 1 {
			t.Fatalf("groups %+v %+v", value, member)
		}
		expectProblem(t, s.Do(t, "POST", "/api/v1/tag-groups", w.Key, map[string]any{"name": "价值"}), 409, "duplicate_group")
		expectProblem(t, s.Do(t, "POST", "/api/v1/tag-groups", w.Key, map[string]any{"name": " "}), 422, "invalid_name")
		expectProblem(t, s.Do(t, "POST", "/api/v1/tag-groups", w.Key, map[string]any{"name": "x", "dimension": "mood"}), 422, "validation_failed")

		var high, risk, gold, highMember tag.Tag
		mustStatus(t, s.Do(t, "POST", "/api/v1/tags", w.Key, map[string]any{"group_id": value.ID, "name": "高价值", "color": "#f5222d"}), 201).JSON(t, &high)
		mustStatus(t, s.Do(t, "POST", "/api/v1/tags", w.Key, map[string]any{"group_id": value.ID, "name": "流失风险"}), 201).JSON(t, &risk)
		mustStatus(t, s.Do(t, "POST", "/api/v1/tags", w.Key, map[string]any{"group_id": member.ID, "name": "金卡"}), 201).JSON(t, &gold)
		mustStatus(t, s.Do(t, "POST", "/api/v1/tags", w.Key, map[string]any{"group_id": member.ID, "name": "高价值"}), 201).JSON(t, &highMember)
		if high.Ref != "价值/高价值" || high.Color != "#F5222D" || risk.Color != tag.DefaultColor {
			t.Fatalf("tags %+v %+v", high, risk)
		}
		expectProblem(t, s.Do(t, "POST", "/api/v1/tags", w.Key, map[string]any{"group_id": value.ID, "name": "高价值"}), 409, "duplicate_tag")
		expectProblem(t, s.Do(t, "POST", "/api/v1/tags", w.Key, map[string]any{"group_id": value.ID, "name": ""}), 422, "invalid_name")
		expectProblem(t, s.Do(t, "POST", "/api/v1/tags", w.Key, map[string]any{"group_id": value.ID, "name": "红", "color": "red"}), 422, "invalid_color")
		expectProblem(t, s.Do(t, "POST", "/api/v1/tags", w.Key, map[string]any{"group_id": 999999, "name": "红"}), 404, "tag_group_not_found")
		expectProblem(t, s.Do(t, "GET", "/api/v1/tags/999999", w.Key, nil), 404, "tag_not_found")

		// Tag customers by id and by reference.
		ids := newCustomers(t, s, w.ID, 3)
		path := fmt.Sprintf("/api/v1/customers/%d/tags", ids[0])
		var res struct {
			CustomerID int64         `json:"customer_id"`
			Added      []int64       `json:"added"`
			Removed    []int64       `json:"removed"`
			Tags       []tag.Applied `json:"tags"`
		}
		mustStatus(t, s.Do(t, "POST", path, w.Key, map[string]any{"tags": []any{high.ID, "金卡", "价值/流失风险"}}), 200).JSON(t, &res)
		if len(res.Added) != 3 || len(res.Tags) != 3 || res.Tags[0].Source != tag.SourceAPI || !strings.HasPrefix(res.Tags[0].SourceRef, "api_key:") {
			t.Fatalf("tagged %+v", res)
		}
		mustStatus(t, s.Do(t, "POST", path, w.Key, map[string]any{"tags": []any{"价值/高价值"}}), 200).JSON(t, &res)
		if len(res.Added) != 0 || len(res.Tags) != 3 {
			t.Fatalf("tagging twice %+v", res)
		}
		p := expectProblem(t, s.Do(t, "POST", path, w.Key, map[string]any{"tags": []any{"高价值"}}), 422, "ambiguous_tag")
		if !strings.Contains(p.Detail, "价值, 会员") {
			t.Fatalf("ambiguity detail %q", p.Detail)
		}
		expectProblem(t, s.Do(t, "POST", path, w.Key, map[string]any{"tags": []any{"价值/不存在"}}), 404, "tag_not_found")
		expectProblem(t, s.Do(t, "POST", path, w.Key, map[string]any{"tags": []any{424242}}), 404, "tag_not_found")
		expectProblem(t, s.Do(t, "POST", path, w.Key, map[string]any{"tags": []any{}}), 422, "validation_failed")
		expectProblem(t, s.Do(t, "POST", path, w.Key, map[string]any{"tags": []any{true}}), 422, "validation_failed")
		expectProblem(t, s.Do(t, "POST", "/api/v1/customers/987654/tags", w.Key, map[string]any{"tags": []any{high.ID}}), 404, "customer_not_found")

		mustStatus(t, s.Do(t, "DELETE", path, w.Key, map[string]any{"tags": []any{"价值/流失风险", gold.ID}}), 200).JSON(t, &res)
		if !slices.Equal(res.Removed, []int64{risk.ID, gold.ID}) || len(res.Tags) != 1 {
			t.Fatalf("untagged %+v", res)
		}
		var held struct{ Items []tag.Applied }
		mustStatus(t, s.Do(t, "GET", path, w.Key, nil), 200).JSON(t, &held)
		if len(held.Items) != 1 || held.Items[0].TagID != high.ID {
			t.Fatalf("held %+v", held)
		}
		var tl struct{ Items []customer.TimelineEntry }
		mustStatus(t, s.Do(t, "GET", fmt.Sprintf("/api/v1/customers/%d/timeline", ids[0]), w.Key, nil), 200).JSON(t, &tl)
		var tagEntries int
		for _, e := range tl.Items {
			if e.Kind == "tag" {
				tagEntries++
			}
		}
		if tagEntries != 5 {
			t.Fatalf("timeline tag entries %d, want 5: %+v", tagEntries, tl.Items)
		}

		// Bulk, then who holds it and the counts in the list.
		var bulk tag.BulkResult
		body := map[string]any{"customer_ids": append(slices.Clone(ids), 99999999)}
		mustStatus(t, s.Do(t, "POST", fmt.Sprintf("/api/v1/tags/%d/customers", high.ID), w.Key, body), 200).JSON(t, &bulk)
		if bulk != (tag.BulkResult{Total: 4, Changed: 2, Unchanged: 1, NotFound: 1}) {
			t.Fatalf("bulk %+v", bulk)
		}
		too := make([]int64, 10001)
		for i := range too {
			too[i] = int64(i + 1)
		}
		expectProblem(t, s.Do(t, "POST", fmt.Sprintf("/api/v1/tags/%d/customers", high.ID), w.Key, map[string]any{"customer_ids": too}), 422, "validation_failed")
		var holders struct {
			Items      []int64
			NextCursor string `json:"next_cursor"`
		}
		mustStatus(t, s.Do(t, "GET", fmt.Sprintf("/api/v1/tags/%d/customers?limit=2", high.ID), w.Key, nil), 200).JSON(t, &holders)
		if !slices.Equal(holders.Items, ids[:2]) || holders.NextCursor == "" {
			t.Fatalf("holders %+v", holders)
		}
		var list struct{ Items []tag.Tag }
		mustStatus(t, s.Do(t, "GET", fmt.Sprintf("/api/v1/tags?group_id=%d", value.ID), w.Key, nil), 200).JSON(t, &list)
		if len(list.Items) != 2 || list.Items[0].ID != high.ID || list.Items[0].CustomerCount != 3 || list.Items[1].CustomerCount != 0 {
			t.Fatalf("list %+v", list.Items)
		}
		mustStatus(t, s.Do(t, "POST", fmt.Sprintf("/api/v1/tags/%d/customers", high.ID), w.Key, map[string]any{"customer_ids": ids[:2], "action": "remove"}), 200).JSON(t, &bulk)
		if bulk.Changed != 2 {
			t.Fatalf("bulk remove %+v", bulk)
		}

		// Change and delete.
		var g tag.Group
		mustStatus(t, s.Do(t, "PATCH", fmt.Sprintf("/api/v1/tag-groups/%d", member.ID), w.Key, map[string]any{"name": "会员等级", "sort_order": -1}), 200).JSON(t, &g)
		if g.Name != "会员等级" || g.SortOrder != -1 || g.TagCount != 2 {
			t.Fatalf("patched group %+v", g)
		}
		var tg tag.Tag
		mustStatus(t, s.Do(t, "PATCH", fmt.Sprintf("/api/v1/tags/%d", risk.ID), w.Key, map[string]any{"name": "沉睡", "color": "#000000"}), 200).JSON(t, &tg)
		if tg.Ref != "价值/沉睡" || tg.Color != "#000000" {
			t.Fatalf("patched tag %+v", tg)
		}
		expectProblem(t, s.Do(t, "PATCH", fmt.Sprintf("/api/v1/tags/%d", risk.ID), w.Key, map[string]any{"color": "#12345"}), 422, "invalid_color")
		expectProblem(t, s.Do(t, "DELETE", fmt.Sprintf("/api/v1/tag-groups/%d", value.ID), w.Key, nil), 409, "group_not_empty")
		mustStatus(t, s.Do(t, "DELETE", fmt.Sprintf("/api/v1/tags/%d", risk.ID), w.Key, nil), 204)
		mustStatus(t, s.Do(t, "DELETE", fmt.Sprintf("/api/v1/tag-groups/%d?force=true", value.ID), w.Key, nil), 204)
		expectProblem(t, s.Do(t, "GET", fmt.Sprintf("/api/v1/tag-groups/%d", value.ID), w.Key, nil), 404, "tag_group_not_found")
		mustStatus(t, s.Do(t, "GET", path, w.Key, nil), 200).JSON(t, &held)
		if len(held.Items) != 0 {
			t.Fatalf("deleted group's tags still held: %+v", held.Items)
		}
		var groups struct{ Items []tag.Group }
		mustStatus(t, s.Do(t, "GET", "/api/v1/tag-groups", w.Key, nil), 200).JSON(t, &groups)
		if len(groups.Items) != 1 || groups.Items[0].ID != member.ID {
			t.Fatalf("groups %+v", groups.Items)
		}
	})
}

func TestTagsAPIIsolationAndRoles(t *testing.T) {
	eachServer(t, func(t *testing.T, s *apptest.Server) {
		ctx := context.Background()
		a, b := s.NewWorkspace(t, "brand-a"), s.NewWorkspace(t, "brand-b")
		var g tag.Group
		var tg tag.Tag
		mustStatus(t, s.Do(t, "POST", "/api/v1/tag-groups", a.Key, map[string]any{"name": "价值"}), 201).JSON(t, &g)
		mustStatus(t, s.Do(t, "POST", "/api/v1/tags", a.Key, map[string]any{"group_id": g.ID, "name": "高价值"}), 201).JSON(t, &tg)
		ca, cb := newCustomers(t, s, a.ID, 1)[0], newCustomers(t, s, b.ID, 1)[0]
		mustStatus(t, s.Do(t, "POST", fmt.Sprintf("/api/v1/customers/%d/tags", ca), a.Key, map[string]any{"tags": []any{tg.ID}}), 200)

		// B sees nothing of A and cannot touch it.
		var list struct{ Items []tag.Tag }
		mustStatus(t, s.Do(t, "GET", "/api/v1/tags", b.Key, nil), 200).JSON(t, &list)
		if len(list.Items) != 0 {
			t.Fatalf("B lists A's tags: %+v", list.Items)
		}
		expectProblem(t, s.Do(t, "GET", fmt.Sprintf("/api/v1/tags/%d", tg.ID), b.Key, nil), 404, "tag_not_found")
		expectProblem(t, s.Do(t, "GET", fmt.Sprintf("/api/v1/tag-groups/%d", g.ID), b.Key, nil), 404, "tag_group_not_found")
		expectProblem(t, s.Do(t, "PATCH", fmt.Sprintf("/api/v1/tags/%d", tg.ID), b.Key, map[string]any{"name": "x"}), 404, "tag_not_found")
		expectProblem(t, s.Do(t, "DELETE", fmt.Sprintf("/api/v1/tags/%d", tg.ID), b.Key, nil), 404, "tag_not_found")
		expectProblem(t, s.Do(t, "POST", "/api/v1/tags", b.Key, map[string]any{"group_id": g.ID, "name": "y"}), 404, "tag_group_not_found")
		expectProblem(t, s.Do(t, "POST", fmt.Sprintf("/api/v1/customers/%d/tags", cb), b.Key, map[string]any{"tags": []any{tg.ID}}), 404, "tag_not_found")
		expectProblem(t, s.Do(t, "POST", fmt.Sprintf("/api/v1/customers/%d/tags", cb), b.Key, map[string]any{"tags": []any{"价值/高价值"}}), 404, "tag_not_found")
		expectProblem(t, s.Do(t, "GET", fmt.Sprintf("/api/v1/customers/%d/tags", ca), b.Key, nil), 404, "customer_not_found")
		expectProblem(t, s.Do(t, "GET", fmt.Sprintf("/api/v1/tags/%d/customers", tg.ID), b.Key, nil), 404, "tag_not_found")
		expectProblem(t, s.Do(t, "POST", fmt.Sprintf("/api/v1/tags/%d/customers", tg.ID), b.Key, map[string]any{"customer_ids": []int64{cb}}), 404, "tag_not_found")
		// B's own group of the same name is independent.
		mustStatus(t, s.Do(t, "POST", "/api/v1/tag-groups", b.Key, map[string]any{"name": "价值"}), 201)

		// A's customer ids given in A's bulk request are A's; B's ids are not found.
		var bulk tag.BulkResult
		mustStatus(t, s.Do(t, "POST", fmt.Sprintf("/api/v1/tags/%d/customers", tg.ID), a.Key, map[string]any{"customer_ids": []int64{cb}}), 200).JSON(t, &bulk)
		if bulk.NotFound != 1 || bulk.Changed != 0 {
			t.Fatalf("bulk with another workspace's customer: %+v", bulk)
		}

		// Roles: analysts read, staff tag customers, neither defines tags.
		_, analyst, err := s.App.Tenant.CreateAPIKey(ctx, tenant.System(a.ID), "analyst", tenant.RoleAnalyst)
		if err != nil {
			t.Fatal(err)
		}
		_, staff, err := s.App.Tenant.CreateAPIKey(ctx, tenant.System(a.ID), "staff", tenant.RoleStaff)
		if err != nil {
			t.Fatal(err)
		}
		mustStatus(t, s.Do(t, "GET", "/api/v1/tags", analyst, nil), 200)
		mustStatus(t, s.Do(t, "GET", fmt.Sprintf("/api/v1/customers/%d/tags", ca), analyst, nil), 200)
		expectProblem(t, s.Do(t, "POST", fmt.Sprintf("/api/v1/customers/%d/tags", ca), analyst, map[string]any{"tags": []any{tg.ID}}), 403, "forbidden")
		mustStatus(t, s.Do(t, "DELETE", fmt.Sprintf("/api/v1/customers/%d/tags", ca), staff, map[string]any{"tags": []any{tg.ID}}), 200)
		expectProblem(t, s.Do(t, "POST", "/api/v1/tags", staff, map[string]any{"group_id": g.ID, "name": "z"}), 403, "forbidden")
		expectProblem(t, s.Do(t, "POST", fmt.Sprintf("/api/v1/tags/%d/customers", tg.ID), staff, map[string]any{"customer_ids": []int64{ca}}), 403, "forbidden")
		if r := s.Do(t, "GET", "/api/v1/tags", "", nil); r.Status != http.StatusUnauthorized {
			t.Fatalf("no key: %d", r.Status)
		}
	})
}
