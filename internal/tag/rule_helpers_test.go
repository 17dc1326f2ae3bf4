package tag_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/siyu-dev/siyu/internal/app/apptest"
	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/db/dbtest"
	"github.com/siyu-dev/siyu/internal/event"
	"github.com/siyu-dev/siyu/internal/tag"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// brand is a running Siyu with a workspace, a write key and a few tags, for
// tests that drive auto-tag rules through the API and ingest as clients do.
type brand struct {
	*apptest.Server
	ws       apptest.Workspace
	writeKey string
	tags     map[string]tag.Tag // by name
	p        tenant.Principal
}

// eachBrand runs fn once per engine, in parallel.
func eachBrand(t *testing.T, fn func(t *testing.T, b *brand)) {
	t.Helper()
	for _, e := range dbtest.Engines() {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			fn(t, newBrand(t, e))
		})
	}
}

func newBrand(t testing.TB, engine db.Dialect) *brand {
	t.Helper()
	s := apptest.Start(t, engine)
	ws := s.NewWorkspace(t, "brand")
	b := &brand{Server: s, ws: ws, tags: map[string]tag.Tag{},
		p: tenant.Principal{TenantID: ws.ID, Kind: tenant.ActorUser, ID: ws.Owner.ID, Name: "运营小王", Role: tenant.RoleOwner}}
	var k event.WriteKey
	b.must(t, "POST", "/api/v1/write-keys", map[string]any{"name": "mini program"}, http.StatusCreated, &k)
	b.writeKey = k.Key
	var g tag.Group
	b.must(t, "POST", "/api/v1/tag-groups", map[string]any{"name": "自动", "dimension": "value"}, http.StatusCreated, &g)
	for _, name := range []string{"抹茶爱好者", "高价值", "新客", "退款客户", "上海客户", "流失风险", "活跃", "大单"} {
		var tg tag.Tag
		b.must(t, "POST", "/api/v1/tags", map[string]any{"group_id": g.ID, "name": name}, http.StatusCreated, &tg)
		b.tags[name] = tg
	}
	return b
}

// must sends an API request and decodes the answer, failing unless the
// status is the one wanted.
func (b *brand) must(t testing.TB, method, path string, body any, status int, out any) apptest.Response {
	t.Helper()
	r := b.Do(t, method, path, b.ws.Key, body)
	if r.Status != status {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.Status, status, r.Body)
	}
	if out != nil {
		r.JSON(t, out)
	}
	return r
}

// problem sends a request that must fail and returns its problem document.
func (b *brand) problem(t testing.TB, method, path string, body any, status int, code string) problemDoc {
	t.Helper()
	r := b.Do(t, method, path, b.ws.Key, body)
	var p problemDoc
	r.JSON(t, &p)
	if r.Status != status || p.Code != code {
		t.Fatalf("%s %s: got %d %s, want %d %s: %s", method, path, r.Status, p.Code, status, code, r.Body)
	}
	return p
}

type problemDoc struct {
	Code   string `json:"code"`
	Detail string `json:"detail"`
	Errors []struct {
		Location string `json:"location"`
		Message  string `json:"message"`
	} `json:"errors"`
}

func (p problemDoc) locations() []string {
	var out []string
	for _, e := range p.Errors {
		out = append(out, e.Location)
	}
	return out
}

// rule creates a rule through the API.
func (b *brand) rule(t testing.TB, body map[string]any) tag.Rule {
	t.Helper()
	var r tag.Rule
	b.must(t, "POST", "/api/v1/tag-rules", body, http.StatusCreated, &r)
	return r
}

// customer creates a customer known to ingest by userId.
func (b *brand) customer(t testing.TB, userID string, c customer.NewCustomer) int64 {
	t.Helper()
	c.Identities = append(c.Identities, customer.Identity{Kind: customer.KindUserID, Value: userID})
	if c.Name == "" {
		c.Name = "顾客 " + userID
	}
	got, err := b.App.Customers.Create(context.Background(), b.ws.ID, c)
	if err != nil {
		t.Fatal(err)
	}
	return got.ID
}

// track sends events through the Segment batch endpoint with the write key
// and returns when it answered 200 (the events are committed).
func (b *brand) track(t testing.TB, userID string, evs ...map[string]any) {
	t.Helper()
	batch := make([]any, len(evs))
	for i, e := range evs {
		m := map[string]any{"type": "track", "userId": userID, "messageId": fmt.Sprintf("m-%s-%d-%d", userID, time.Now().UnixNano(), i)}
		for k, v := range e {
			m[k] = v
		}
		batch[i] = m
	}
	body, err := json.Marshal(map[string]any{"batch": batch})
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, b.URL+"/v1/batch", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(b.writeKey, "")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	rb, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("/v1/batch: %d %s", res.StatusCode, rb)
	}
}

// tagsOf reads a customer's tags through the API.
func (b *brand) tagsOf(t testing.TB, customerID int64) []tag.Applied {
	t.Helper()
	var out struct {
		Items []tag.Applied `json:"items"`
	}
	b.must(t, "GET", fmt.Sprintf("/api/v1/customers/%d/tags", customerID), nil, http.StatusOK, &out)
	return out.Items
}

func (b *brand) has(t testing.TB, customerID int64, name string) bool {
	t.Helper()
	return slices.ContainsFunc(b.tagsOf(t, customerID), func(a tag.Applied) bool { return a.TagID == b.tags[name].ID })
}

// eventually retries cond until it holds, for at most 10 s.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	eventuallyWithin(t, 10*time.Second, what, cond)
}

// eventuallyWithin retries cond until it holds, for at most d.
func eventuallyWithin(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// never checks that cond stays false for a while.
func never(t testing.TB, what string, wait time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		if cond() {
			t.Fatalf("unexpectedly: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func hasPostgres() bool { return slices.Contains(dbtest.Engines(), db.Postgres) }
