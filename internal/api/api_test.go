package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/siyu-dev/siyu/internal/app/apptest"
	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/db/dbtest"
	"github.com/siyu-dev/siyu/internal/page"
	"github.com/siyu-dev/siyu/internal/tenant"
)

type problem struct {
	Title  string `json:"title"`
	Status int    `json:"status"`
	Code   string `json:"code"`
	Detail string `json:"detail"`
	Errors []struct {
		Location string `json:"location"`
		Message  string `json:"message"`
	} `json:"errors"`
}

func expectProblem(t *testing.T, r apptest.Response, status int, code string) problem {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d: %s", r.Status, status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		t.Fatalf("content type %q, want application/problem+json", ct)
	}
	var p problem
	r.JSON(t, &p)
	if p.Code != code || p.Status != status || p.Detail == "" {
		t.Fatalf("problem %+v, want code %q status %d and a detail", p, code, status)
	}
	return p
}

func eachServer(t *testing.T, fn func(t *testing.T, s *apptest.Server)) {
	for _, e := range dbtest.Engines() {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			fn(t, apptest.Start(t, e))
		})
	}
}

func TestOpenAPIDocumentIsServedWithoutKey(t *testing.T) {
	s := apptest.Start(t, db.SQLite)
	r := s.Do(t, "GET", "/api/v1/openapi.json", "", nil)
	if r.Status != 200 {
		t.Fatalf("status %d", r.Status)
	}
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
		Servers []struct{ URL string }    `json:"servers"`
	}
	r.JSON(t, &doc)
	if !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Fatalf("openapi %q, want 3.1.x", doc.OpenAPI)
	}
	for _, p := range []string{"/me", "/users", "/api-keys", "/audit-log", "/customers", "/customers/{id}"} {
		if _, ok := doc.Paths[p]; !ok {
			t.Errorf("path %s missing from the OpenAPI document", p)
		}
	}
}

func TestEveryRouteNeedsAKey(t *testing.T) {
	s := apptest.Start(t, db.SQLite)
	for _, path := range []string{"/api/v1/me", "/api/v1/users", "/api/v1/customers", "/api/v1/api-keys", "/api/v1/no-such-route"} {
		expectProblem(t, s.Do(t, "GET", path, "", nil), 401, "missing_api_key")
		expectProblem(t, s.Do(t, "GET", path, "siyu_notarealkey", nil), 401, "invalid_api_key")
	}
	r := s.Do(t, "POST", "/api/v1/users", "", `{"email":"x@y.z"}`)
	expectProblem(t, r, 401, "missing_api_key")
	if r.Header.Get("WWW-Authenticate") == "" {
		t.Error("401 without WWW-Authenticate")
	}
}

// An API key of workspace A can neither read nor change anything of workspace B.
func TestWorkspaceIsolation(t *testing.T) {
	eachServer(t, func(t *testing.T, s *apptest.Server) {
		a := s.NewWorkspace(t, "brand-a")
		b := s.NewWorkspace(t, "brand-b")
		ctx := t.Context()
		cb, err := s.App.Customers.Create(ctx, b.ID, customer.NewCustomer{Name: "乙客户", Phone: "13900139000"})
		if err != nil {
			t.Fatal(err)
		}
		bUsers, _ := s.App.Tenant.Users(ctx, b.ID)
		bKeys, _ := s.App.Tenant.APIKeys(ctx, b.ID, pageAll())

		// Reads of B's things by id are 404 for A, as if they did not exist.
		expectProblem(t, s.Do(t, "GET", fmt.Sprintf("/api/v1/customers/%d", cb.ID), a.Key, nil), 404, "customer_not_found")
		expectProblem(t, s.Do(t, "GET", fmt.Sprintf("/api/v1/users/%d", bUsers[0].ID), a.Key, nil), 404, "user_not_found")
		// Lists show only A's.
		var custs struct{ Items []customer.Customer }
		s.Do(t, "GET", "/api/v1/customers?q=13900139000", a.Key, nil).JSON(t, &custs)
		if len(custs.Items) != 0 {
			t.Fatalf("A sees B's customers: %+v", custs.Items)
		}
		s.Do(t, "GET", "/api/v1/customers?identifier=phone:13900139000", a.Key, nil).JSON(t, &custs)
		if len(custs.Items) != 0 {
			t.Fatalf("A finds B's customer by identifier")
		}
		var users struct{ Items []tenant.User }
		s.Do(t, "GET", "/api/v1/users", a.Key, nil).JSON(t, &users)
		for _, u := range users.Items {
			if u.Email == b.OwnerEmail {
				t.Fatalf("A lists B's user")
			}
		}
		// Writes to B's things fail and change nothing.
		expectProblem(t, s.Do(t, "PATCH", fmt.Sprintf("/api/v1/users/%d", bUsers[0].ID), a.Key, map[string]any{"disabled": true}), 404, "user_not_found")
		expectProblem(t, s.Do(t, "DELETE", fmt.Sprintf("/api/v1/api-keys/%d", bKeys.Items[0].ID), a.Key, nil), 404, "api_key_not_found")
		if u, _ := s.App.Tenant.User(ctx, b.ID, bUsers[0].ID); u.Disabled() {
			t.Fatal("A disabled B's owner")
		}
		if r := s.Do(t, "GET", "/api/v1/me", b.Key, nil); r.Status != 200 {
			t.Fatalf("B's key stopped working after A's attempt: %d", r.Status)
		}
		// The workspace A's key acts on is A's, whatever the request says.
		var me struct {
			Workspace tenant.Workspace `json:"workspace"`
		}
		s.Do(t, "GET", fmt.Sprintf("/api/v1/me?tenant_id=%d", b.ID), a.Key, nil).JSON(t, &me)
		if me.Workspace.ID != a.ID {
			t.Fatalf("A's key acted in workspace %d", me.Workspace.ID)
		}
	})
}

func TestAPIKeyLifecycle(t *testing.T) {
	eachServer(t, func(t *testing.T, s *apptest.Server) {
		w := s.NewWorkspace(t, "keys")
		var created struct {
			ID     int64  `json:"id"`
			Key    string `json:"key"`
			Prefix string `json:"prefix"`
			Role   string `json:"role"`
		}
		r := s.Do(t, "POST", "/api/v1/api-keys", w.Key, map[string]string{"name": "analytics export", "role": "analyst"})
		if r.Status != http.StatusCreated {
			t.Fatalf("create: %d %s", r.Status, r.Body)
		}
		r.JSON(t, &created)
		if !strings.HasPrefix(created.Key, "siyu_") || !strings.HasPrefix(created.Key, created.Prefix) || created.Role != "analyst" {
			t.Fatalf("created %+v", created)
		}
		// The analyst key reads but may not manage.
		if r := s.Do(t, "GET", "/api/v1/customers", created.Key, nil); r.Status != 200 {
			t.Fatalf("analyst list customers: %d", r.Status)
		}
		expectProblem(t, s.Do(t, "GET", "/api/v1/users", created.Key, nil), 403, "forbidden")
		expectProblem(t, s.Do(t, "POST", "/api/v1/api-keys", created.Key, map[string]string{"name": "x", "role": "admin"}), 403, "forbidden")
		// The key is never listed in clear, and its use is recorded.
		r = s.Do(t, "GET", "/api/v1/api-keys", w.Key, nil)
		if strings.Contains(string(r.Body), created.Key) {
			t.Fatal("key listed in clear")
		}
		k, err := s.App.Tenant.APIKey(t.Context(), w.ID, created.ID)
		if err != nil || k.LastUsedAt.IsZero() {
			t.Fatalf("last used not recorded: %+v %v", k, err)
		}
		// Revoked keys stop at once.
		if r := s.Do(t, "DELETE", fmt.Sprintf("/api/v1/api-keys/%d", created.ID), w.Key, nil); r.Status != 200 {
			t.Fatalf("revoke: %d %s", r.Status, r.Body)
		}
		expectProblem(t, s.Do(t, "GET", "/api/v1/me", created.Key, nil), 401, "invalid_api_key")
		// Both actions are in the audit log.
		var audit struct{ Items []tenant.AuditEntry }
		s.Do(t, "GET", "/api/v1/audit-log", w.Key, nil).JSON(t, &audit)
		var actions []string
		for _, e := range audit.Items {
			actions = append(actions, e.Action)
		}
		joined := strings.Join(actions, ",")
		if !strings.Contains(joined, "apikey.create") || !strings.Contains(joined, "apikey.revoke") {
			t.Fatalf("audit log: %v", actions)
		}
		if audit.Items[0].IP != "127.0.0.1" || audit.Items[0].ActorKind != tenant.ActorAPIKey {
			t.Fatalf("audit entry lacks who/where: %+v", audit.Items[0])
		}
	})
}

func TestBadInputGetsProblemsAndChangesNothing(t *testing.T) {
	eachServer(t, func(t *testing.T, s *apptest.Server) {
		w := s.NewWorkspace(t, "bad-input")
		before, _ := s.App.Tenant.Users(t.Context(), w.ID)

		expectProblem(t, s.Do(t, "POST", "/api/v1/users", w.Key, `{"email": "a@b.c", "password": `), 400, "malformed_request")
		p := expectProblem(t, s.Do(t, "POST", "/api/v1/users", w.Key, `{"email": "not-an-email", "password": "short", "role": "king"}`), 422, "validation_failed")
		if len(p.Errors) < 2 {
			t.Fatalf("validation problem does not list the bad fields: %+v", p)
		}
		big := `{"email":"a@b.c","password":"` + strings.Repeat("x", 2<<20) + `","role":"admin"}`
		expectProblem(t, s.Do(t, "POST", "/api/v1/users", w.Key, big), 413, "body_too_large")
		expectProblem(t, s.Do(t, "GET", "/api/v1/customers?cursor=garbage", w.Key, nil), 422, "invalid_cursor")
		expectProblem(t, s.Do(t, "GET", "/api/v1/customers?limit=5000", w.Key, nil), 422, "validation_failed")
		expectProblem(t, s.Do(t, "GET", "/api/v1/customers?identifier=nocolon", w.Key, nil), 422, "invalid_identifier")
		// Duplicate email: a conflict with a readable detail.
		body := map[string]string{"email": w.OwnerEmail, "password": "long enough pw", "role": "operator"}
		expectProblem(t, s.Do(t, "POST", "/api/v1/users", w.Key, body), 409, "email_taken")
		// An admin key may not create an owner.
		body = map[string]string{"email": "boss@x.test", "password": "long enough pw", "role": "owner"}
		expectProblem(t, s.Do(t, "POST", "/api/v1/users", w.Key, body), 403, "role_too_high")

		after, _ := s.App.Tenant.Users(t.Context(), w.ID)
		if len(after) != len(before) {
			t.Fatalf("bad requests created users: %d → %d", len(before), len(after))
		}
	})
}

func TestCustomerPagination(t *testing.T) {
	eachServer(t, func(t *testing.T, s *apptest.Server) {
		w := s.NewWorkspace(t, "paging")
		var in []customer.NewCustomer
		for i := range 7 {
			in = append(in, customer.NewCustomer{Name: fmt.Sprintf("顾客%d", i)})
		}
		if _, err := s.App.Customers.CreateMany(t.Context(), w.ID, in); err != nil {
			t.Fatal(err)
		}
		seen := map[int64]bool{}
		cursor := ""
		pages := 0
		for {
			var pg struct {
				Items      []customer.Customer `json:"items"`
				NextCursor string              `json:"next_cursor"`
			}
			s.Do(t, "GET", "/api/v1/customers?limit=3&cursor="+cursor, w.Key, nil).JSON(t, &pg)
			pages++
			for _, c := range pg.Items {
				if seen[c.ID] {
					t.Fatalf("customer %d on two pages", c.ID)
				}
				seen[c.ID] = true
			}
			if pg.NextCursor == "" {
				break
			}
			cursor = pg.NextCursor
		}
		if len(seen) != 7 || pages != 3 {
			t.Fatalf("saw %d customers in %d pages", len(seen), pages)
		}
	})
}

func TestProbesAndMetrics(t *testing.T) {
	s := apptest.Start(t, db.SQLite)
	for _, p := range []string{"/healthz", "/readyz"} {
		if r := s.Do(t, "GET", p, "", nil); r.Status != 200 {
			t.Fatalf("%s: %d", p, r.Status)
		}
	}
	s.Do(t, "GET", "/api/v1/me", "", nil)
	r := s.Do(t, "GET", "/metrics", "", nil)
	body := string(r.Body)
	for _, want := range []string{`siyu_http_requests_total{route="GET /api/v1/me",code="401"}`, "siyu_db_open_connections", "siyu_http_request_duration_seconds_bucket"} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func pageAll() page.Request { return page.Request{Limit: page.MaxLimit} }
