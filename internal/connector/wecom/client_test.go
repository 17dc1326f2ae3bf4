package wecom_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/siyu-dev/siyu/internal/connector/wecom"
	"github.com/siyu-dev/siyu/internal/connector/wecom/wecomtest"
	"github.com/siyu-dev/siyu/internal/errs"
)

func newSim(t *testing.T, o wecomtest.Options) *wecomtest.Server {
	t.Helper()
	s := wecomtest.New(o)
	t.Cleanup(s.Close)
	return s
}

// newClient returns a client of the simulated corp that runs on its clock:
// waits and back-offs advance simulated time instead of sleeping.
func newClient(t *testing.T, s *wecomtest.Server, mod func(*wecom.Config)) *wecom.Client {
	t.Helper()
	cfg := wecom.Config{BaseURL: s.URL(), CorpID: s.CorpID(), Secret: s.Secret(), Now: s.Now, Sleep: s.Sleep}
	if mod != nil {
		mod(&cfg)
	}
	c, err := wecom.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// sleeps records back-off waits while advancing simulated time.
type sleeps struct {
	mu  sync.Mutex
	sim *wecomtest.Server
	d   []time.Duration
}

func (r *sleeps) sleep(ctx context.Context, d time.Duration) error {
	r.mu.Lock()
	r.d = append(r.d, d)
	r.mu.Unlock()
	return r.sim.Sleep(ctx, d)
}

// message returns the explanation an operator sees for err.
func message(err error) string {
	if e, ok := errs.As(err); ok {
		return e.Message
	}
	return ""
}

func failedCalls(s *wecomtest.Server, api string) []int {
	var codes []int
	for _, c := range s.Calls() {
		if c.API == api && c.ErrCode != 0 {
			codes = append(codes, c.ErrCode)
		}
	}
	return codes
}

func TestNewRequiresCorpAndSecret(t *testing.T) {
	t.Parallel()
	if _, err := wecom.New(wecom.Config{Secret: "x"}); errs.CodeOf(err) != "required" {
		t.Errorf("no corp ID: got %v", err)
	}
	if _, err := wecom.New(wecom.Config{CorpID: "ww1"}); errs.CodeOf(err) != "required" {
		t.Errorf("no secret: got %v", err)
	}
}

func TestAccessTokenIsCachedAndShared(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newSim(t, wecomtest.Options{})
	c := newClient(t, s, nil)
	var wg sync.WaitGroup
	errc := make(chan error, 20)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.DepartmentList(ctx, 0)
			errc <- err
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Fatal(err)
		}
	}
	for range 5 {
		if _, err := c.FollowUserList(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.CallCount("gettoken"); n != 1 {
		t.Errorf("gettoken called %d times for 25 calls, want 1", n)
	}
}

func TestAccessTokenRefreshedBeforeExpiry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newSim(t, wecomtest.Options{})
	c := newClient(t, s, nil)
	first, err := c.AccessToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Inside the last 5 minutes the client asks again; WeCom returns the
	// same token with its remaining life, which the client then uses up.
	s.Advance(2*time.Hour - 2*time.Minute)
	if _, err := c.DepartmentList(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if n := s.CallCount("gettoken"); n != 2 {
		t.Errorf("gettoken calls = %d, want 2 (refresh before expiry)", n)
	}
	if _, err := c.DepartmentList(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if n := s.CallCount("gettoken"); n != 2 {
		t.Errorf("gettoken calls = %d after a same-token refresh, want 2 (no refresh storm)", n)
	}
	s.Advance(3 * time.Minute) // past expiry
	if _, err := c.DepartmentList(ctx, 0); err != nil {
		t.Fatal(err)
	}
	second, _ := c.AccessToken(ctx)
	if second == first {
		t.Error("the token was not replaced after it expired")
	}
	if codes := failedCalls(s, "department/list"); len(codes) != 0 {
		t.Errorf("calls failed with %v; the client should refresh before WeCom rejects the token", codes)
	}
}

func TestExpiredOrRevokedTokenIsRetriedOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newSim(t, wecomtest.Options{})
	frozen := s.Now()
	// The client's clock lags, so it believes its token valid when WeCom
	// says 42001; then WeCom revokes tokens early (40014).
	c := newClient(t, s, func(cfg *wecom.Config) { cfg.Now = func() time.Time { return frozen } })
	if _, err := c.DepartmentList(ctx, 0); err != nil {
		t.Fatal(err)
	}
	s.Advance(3 * time.Hour)
	if _, err := c.DepartmentList(ctx, 0); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	s.RevokeTokens()
	if _, err := c.DepartmentList(ctx, 0); err != nil {
		t.Fatalf("after revocation: %v", err)
	}
	if got := failedCalls(s, "department/list"); len(got) != 2 || got[0] != wecom.CodeTokenExpired || got[1] != wecom.CodeInvalidToken {
		t.Errorf("failed calls = %v, want one 42001 and one 40014", got)
	}
	if n := s.CallCount("gettoken"); n != 3 {
		t.Errorf("gettoken calls = %d, want 3", n)
	}

	// Only once: a second token error in a row is returned.
	s.FailNext("department/list", wecom.CodeTokenExpired, 2)
	_, err := c.DepartmentList(ctx, 0)
	if wecom.ErrorCode(err) != wecom.CodeTokenExpired {
		t.Errorf("got %v, want errcode 42001 after one retry", err)
	}
}

func TestSecretResetMidSession(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newSim(t, wecomtest.Options{})
	c := newClient(t, s, nil)
	if _, err := c.FollowUserList(ctx); err != nil {
		t.Fatal(err)
	}
	s.SetSecret("a-new-secret")
	_, err := c.FollowUserList(ctx)
	var apiErr *wecom.APIError
	if !errors.As(err, &apiErr) || apiErr.Code != wecom.CodeInvalidSecret || apiErr.API != "gettoken" {
		t.Fatalf("got %v, want gettoken's 40001", err)
	}
	if !strings.Contains(message(err), "secret") {
		t.Errorf("explanation %q does not mention the secret", message(err))
	}
}

func TestRateLimitBacksOffAndRetries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newSim(t, wecomtest.Options{})
	if _, err := s.PutStaff(wecomtest.Staff{UserID: "amy"}); err != nil {
		t.Fatal(err)
	}
	rec := &sleeps{sim: s}
	c := newClient(t, s, func(cfg *wecom.Config) {
		cfg.Sleep, cfg.RetryBase, cfg.RetryMax = rec.sleep, time.Second, time.Minute
	})
	s.FailNext("externalcontact/batch/get_by_user", wecom.CodeRateLimited, 2)
	s.FailNext("externalcontact/batch/get_by_user", wecom.CodeConcurrencyLimited, 1)
	if _, err := c.BatchGetByUser(ctx, []string{"amy"}, "", 100); err != nil {
		t.Fatal(err)
	}
	if len(rec.d) != 3 {
		t.Fatalf("backed off %d times, want 3: %v", len(rec.d), rec.d)
	}
	for i, d := range rec.d {
		ceil := time.Second << i
		if d < ceil/2 || d > ceil {
			t.Errorf("back-off %d = %v, want within [%v, %v] (jittered exponential)", i, d, ceil/2, ceil)
		}
	}

	// It gives up after MaxRetries, with an error the console shows as a rate limit.
	s.FailNext("externalcontact/batch/get_by_user", wecom.CodeRateLimited, 100)
	before := s.CallCount("externalcontact/batch/get_by_user")
	_, err := c.BatchGetByUser(ctx, []string{"amy"}, "", 100)
	if wecom.ErrorCode(err) != wecom.CodeRateLimited || errs.KindOf(err) != errs.RateLimited {
		t.Fatalf("got %v (kind %v), want 45009 as RateLimited", err, errs.KindOf(err))
	}
	if n := s.CallCount("externalcontact/batch/get_by_user") - before; n != 7 {
		t.Errorf("calls before giving up = %d, want 1 + 6 retries", n)
	}
}

func TestRateLimitWaitsForTheWindow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newSim(t, wecomtest.Options{})
	s.SetLimits("department/list", wecom.Limits{PerMinute: 3})
	c := newClient(t, s, nil)
	start := s.Now()
	for i := range 5 {
		if _, err := c.DepartmentList(ctx, 0); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if len(failedCalls(s, "department/list")) == 0 {
		t.Error("the simulator never rate limited; the test proves nothing")
	}
	if s.Now().Sub(start) < time.Minute {
		t.Errorf("only %v of simulated time passed; the client did not wait for the next window", s.Now().Sub(start))
	}
}

func TestLimiterKeepsUnderTheLimits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newSim(t, wecomtest.Options{Limits: wecom.Limits{PerMinute: 10, PerHour: 1000}})
	c := newClient(t, s, func(cfg *wecom.Config) { cfg.Limits = wecom.Limits{PerMinute: 10, PerHour: 1000} })
	start := s.Now()
	for i := range 25 {
		if _, err := c.FollowUserList(ctx); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if codes := failedCalls(s, "externalcontact/get_follow_user_list"); len(codes) > 0 {
		t.Errorf("the limiter let WeCom reject calls: %v", codes)
	}
	if d := s.Now().Sub(start); d < 2*time.Minute {
		t.Errorf("25 calls at 10 a minute took %v of simulated time, want at least 2 minutes", d)
	}
}

func TestBackoffHonoursContext(t *testing.T) {
	t.Parallel()
	s := newSim(t, wecomtest.Options{})
	c := newClient(t, s, func(cfg *wecom.Config) {
		cfg.Sleep, cfg.RetryBase, cfg.RetryMax = nil, time.Hour, time.Hour // real sleeping
	})
	s.FailNext("department/list", wecom.CodeRateLimited, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	begin := time.Now()
	_, err := c.DepartmentList(ctx, 0)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got %v, want the context's deadline", err)
	}
	if time.Since(begin) > 5*time.Second {
		t.Error("the back-off ignored the context")
	}
}

func TestTrustedIPErrorIsExplained(t *testing.T) {
	t.Parallel()
	s := newSim(t, wecomtest.Options{})
	s.SetTrustedIP(false)
	c := newClient(t, s, nil)
	_, err := c.GetToken(context.Background())
	if wecom.ErrorCode(err) != wecom.CodeIPNotAllowed {
		t.Fatalf("got %v, want 60020", err)
	}
	msg := message(err)
	for _, want := range []string{"trusted IP", "企业可信IP", "应用管理"} {
		if !strings.Contains(msg, want) {
			t.Errorf("explanation %q lacks %q", msg, want)
		}
	}
	if errs.KindOf(err) != errs.Invalid || errs.CodeOf(err) != "wecom_60020" {
		t.Errorf("kind %v code %s, want invalid wecom_60020", errs.KindOf(err), errs.CodeOf(err))
	}
}

func TestExplainCoversCommonCodes(t *testing.T) {
	t.Parallel()
	cases := map[int]string{
		wecom.CodeInvalidSecret:      "secret",
		wecom.CodeInvalidCorpID:      "corp ID",
		wecom.CodeSecretMismatch:     "secret",
		wecom.CodeForbidden:          "可调用应用",
		wecom.CodeNotExternalContact: "relation",
		wecom.CodeWelcomeChatStarted: "chatting",
		wecom.CodeWelcomeCodeInvalid: "20 seconds",
		wecom.CodeRateLimited:        "10,000",
		wecom.CodeInvalidMiniProgram: "appid",
		wecom.CodeNoInteropLicense:   "license",
	}
	for code, want := range cases {
		if got := wecom.Explain(code); !strings.Contains(got, want) {
			t.Errorf("Explain(%d) = %q, want it to mention %q", code, got, want)
		}
	}
	if got := wecom.Explain(123456); !strings.Contains(got, "123456") {
		t.Errorf("Explain of an unknown code = %q", got)
	}
}

func TestBatchGetByUserPagesThroughEveryContact(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newSim(t, wecomtest.Options{})
	for _, id := range []string{"amy", "bob", "cat"} {
		if _, err := s.PutStaff(wecomtest.Staff{UserID: id}); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]bool{}
	for i := range 230 {
		follows := []wecomtest.Follow{{UserID: "amy"}}
		if i%10 == 0 {
			follows = append(follows, wecomtest.Follow{UserID: "cat"})
		}
		ct, err := s.PutContact(wecomtest.Contact{}, follows...)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range follows {
			want[f.UserID+"/"+ct.ExternalUserID] = true
		}
	}
	c := newClient(t, s, nil)
	got := map[string]bool{}
	cursor, pages := "", 0
	for {
		// 0 and anything over 100 mean the maximum, sent explicitly.
		page, err := c.BatchGetByUser(ctx, []string{"amy", "bob", "cat"}, cursor, 500)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, cf := range page.Contacts {
			key := cf.FollowInfo.UserID + "/" + cf.ExternalContact.ExternalUserID
			if got[key] {
				t.Errorf("%s returned twice", key)
			}
			got[key] = true
		}
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d relations, want %d", len(got), len(want))
	}
	if pages != 3 {
		t.Errorf("pages = %d, want 3 for %d relations at 100 a page", pages, len(want))
	}
	if m := s.MaxLimit("externalcontact/batch/get_by_user"); m != 100 {
		t.Errorf("largest limit sent = %d, want 100", m)
	}
	for _, call := range s.Calls() {
		if call.API == "externalcontact/batch/get_by_user" && !strings.Contains(string(call.Body), `"limit":100`) {
			t.Errorf("request without an explicit limit of 100: %s", call.Body)
		}
	}
	if _, err := c.BatchGetByUser(ctx, nil, "", 100); errs.KindOf(err) != errs.Invalid {
		t.Errorf("no members: got %v, want an invalid-input error", err)
	}
}

func TestWritesAreNotRetriedAfterNetworkErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newSim(t, wecomtest.Options{})
	c := newClient(t, s, func(cfg *wecom.Config) { cfg.RetryBase = time.Millisecond })
	if _, err := c.AccessToken(ctx); err != nil {
		t.Fatal(err)
	}

	// The connection drops after WeCom created the tag: a retry would create
	// another one, so the caller gets the error and must check.
	s.FailNextHTTP("externalcontact/add_corp_tag", -1, 1)
	_, err := c.AddCorpTag(ctx, wecom.AddCorpTagRequest{GroupName: "Level", Tags: []wecom.NewCorpTag{{Name: "Gold"}}})
	if err == nil {
		t.Fatal("a dropped connection was reported as success")
	}
	if n := s.CallCount("externalcontact/add_corp_tag"); n != 1 {
		t.Errorf("add_corp_tag sent %d times, want 1", n)
	}
	s.FailNextHTTP("externalcontact/send_welcome_msg", 502, 1)
	err = c.SendWelcomeMsg(ctx, wecom.WelcomeMessage{WelcomeCode: "x", Text: &wecom.Text{Content: "hi"}})
	if err == nil || s.CallCount("externalcontact/send_welcome_msg") != 1 {
		t.Errorf("send_welcome_msg after a 502: err %v, sent %d times; want an error and 1", err, s.CallCount("externalcontact/send_welcome_msg"))
	}

	// Reads are retried.
	s.FailNextHTTP("externalcontact/get_corp_tag_list", -1, 1)
	s.FailNextHTTP("externalcontact/get_corp_tag_list", 503, 1)
	groups, err := c.GetCorpTagList(ctx, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != 1 || groups[0].GroupName != "Level" {
		t.Errorf("tag groups = %+v, want the one created before the connection dropped", groups)
	}
	if n := s.CallCount("externalcontact/get_corp_tag_list"); n != 3 {
		t.Errorf("get_corp_tag_list sent %d times, want 3", n)
	}
}

func TestErrorsDoNotLeakTheToken(t *testing.T) {
	t.Parallel()
	s := newSim(t, wecomtest.Options{})
	c := newClient(t, s, nil)
	tok, err := c.AccessToken(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s.FailNextHTTP("user/get", -1, 10)
	_, err = c.GetUser(context.Background(), "amy")
	if err == nil || strings.Contains(err.Error(), tok) || strings.Contains(err.Error(), s.Secret()) {
		t.Errorf("error %v leaks the token or secret", err)
	}
}

func TestCustomerContactCalls(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newSim(t, wecomtest.Options{})
	if _, err := s.PutStaff(wecomtest.Staff{UserID: "amy", Name: "Amy"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutStaff(wecomtest.Staff{UserID: "bob"}); err != nil {
		t.Fatal(err)
	}
	ct, err := s.PutContact(wecomtest.Contact{Name: "Li Lei", Gender: 1}, wecomtest.Follow{UserID: "amy", State: "store_12"})
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, s, nil)

	if ids, err := c.ExternalContactList(ctx, "bob"); err != nil || len(ids) != 0 {
		t.Errorf("a member without customers: %v, %v; want an empty list", ids, err)
	}
	if ids, err := c.ExternalContactList(ctx, "amy"); err != nil || len(ids) != 1 || ids[0] != ct.ExternalUserID {
		t.Errorf("amy's customers = %v, %v", ids, err)
	}

	g, err := c.AddCorpTag(ctx, wecom.AddCorpTagRequest{GroupName: "Level", Order: 5, Tags: []wecom.NewCorpTag{{Name: "Gold"}, {Name: "Silver"}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Tags) != 2 || !strings.HasPrefix(g.GroupID, "et") || !strings.HasPrefix(g.Tags[0].ID, "et") {
		t.Fatalf("new tag group = %+v", g)
	}
	if _, err := c.AddCorpTag(ctx, wecom.AddCorpTagRequest{GroupID: g.GroupID, Tags: []wecom.NewCorpTag{{Name: "Gold"}}}); !wecom.IsCode(err, wecom.CodeTagNameExists) {
		t.Errorf("duplicate tag name: got %v, want 40071", err)
	}
	gold := g.Tags[0].ID
	if err := c.MarkTag(ctx, "amy", ct.ExternalUserID, []string{gold}, nil); err != nil {
		t.Fatal(err)
	}
	remark, desc := "VIP Li", "likes serums"
	if err := c.Remark(ctx, wecom.RemarkRequest{UserID: "amy", ExternalUserID: ct.ExternalUserID, Remark: &remark, Description: &desc}); err != nil {
		t.Fatal(err)
	}
	d, err := c.GetExternalContact(ctx, ct.ExternalUserID, "")
	if err != nil {
		t.Fatal(err)
	}
	if d.ExternalContact.Name != "Li Lei" || d.ExternalContact.UnionID == "" || len(d.FollowUsers) != 1 {
		t.Fatalf("contact = %+v", d)
	}
	fu := d.FollowUsers[0]
	if fu.Remark != remark || fu.Description != desc || fu.State != "store_12" || len(fu.Tags) != 1 || fu.Tags[0].TagID != gold || fu.Tags[0].GroupName != "Level" {
		t.Errorf("relation = %+v", fu)
	}
	if err := c.MarkTag(ctx, "bob", ct.ExternalUserID, []string{gold}, nil); !wecom.IsCode(err, wecom.CodeNotExternalContact) {
		t.Errorf("marking a customer of someone else: got %v, want 84061", err)
	}

	if err := c.EditCorpTag(ctx, wecom.EditCorpTagRequest{ID: gold, Name: "Golden"}); err != nil {
		t.Fatal(err)
	}
	if err := c.DelCorpTag(ctx, []string{g.Tags[1].ID}, nil); err != nil {
		t.Fatal(err)
	}
	groups, err := c.GetCorpTagList(ctx, nil, nil)
	if err != nil || len(groups) != 1 || len(groups[0].Tags) != 1 || groups[0].Tags[0].Name != "Golden" {
		t.Errorf("tags after edit and delete = %+v, %v", groups, err)
	}
	deleted, err := c.GetCorpTagList(ctx, []string{g.Tags[1].ID}, nil)
	if err != nil || len(deleted) != 1 || !deleted[0].Tags[0].Deleted {
		t.Errorf("a deleted tag queried by ID = %+v, %v; want it marked deleted", deleted, err)
	}
}

func TestGroupChatCalls(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newSim(t, wecomtest.Options{})
	if err := wecomtest.Populate(s.Corp, 300, 10, 7); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, s, nil)
	var ids []string
	cursor := ""
	for {
		page, err := c.GroupChatList(ctx, wecom.GroupChatFilter{}, cursor, 1)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range page.GroupChats {
			ids = append(ids, g.ChatID)
		}
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	if len(ids) != len(s.Groups()) || len(ids) == 0 {
		t.Fatalf("listed %d groups, the corp has %d", len(ids), len(s.Groups()))
	}
	owned, err := c.GroupChatList(ctx, wecom.GroupChatFilter{OwnerUserIDs: []string{"staff0001"}}, "", 0)
	if err != nil || len(owned.GroupChats) != 1 {
		t.Errorf("groups of staff0001 = %+v, %v", owned, err)
	}
	g, err := c.GroupChatGet(ctx, ids[0], true)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := s.Group(ids[0])
	if g.Owner != want.Owner || len(g.Members) != len(want.Members) || g.MemberVersion != want.MemberVersion || g.Members[0].Name == "" {
		t.Errorf("group = %+v, want %+v", g, want)
	}
	if err := s.DismissGroup(ctx, ids[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GroupChatGet(ctx, ids[0], false); !wecom.IsCode(err, wecom.CodeChatDismissed) {
		t.Errorf("a dismissed group: got %v, want 49008", err)
	}
	if _, err := c.GroupChatGet(ctx, "wrNoSuchChat", false); !wecom.IsCode(err, wecom.CodeChatNotFound) || errs.KindOf(err) != errs.NotFound {
		t.Errorf("an unknown group: got %v, want 40050 as NotFound", err)
	}
}

func TestDirectoryCalls(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newSim(t, wecomtest.Options{})
	if err := wecomtest.Populate(s.Corp, 10, 45, 1); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, s, nil)
	depts, err := c.DepartmentList(ctx, 0)
	if err != nil || len(depts) != 3 || depts[0].ID != 1 {
		t.Errorf("departments = %+v, %v", depts, err)
	}
	users, err := c.UserList(ctx, 1, true)
	if err != nil || len(users) != 45 || users[0].Status != wecom.UserActive || users[0].Name == "" {
		t.Errorf("users = %d, %v", len(users), err)
	}
	page, err := c.UserListID(ctx, "", 40)
	if err != nil || len(page.DeptUsers) != 40 || page.NextCursor == "" {
		t.Fatalf("first user ID page = %d, next %q, %v", len(page.DeptUsers), page.NextCursor, err)
	}
	page, err = c.UserListID(ctx, page.NextCursor, 40)
	if err != nil || len(page.DeptUsers) != 5 || page.NextCursor != "" {
		t.Errorf("second user ID page = %d, next %q, %v", len(page.DeptUsers), page.NextCursor, err)
	}
	u, err := c.GetUser(ctx, "staff0002")
	if err != nil || u.UserID != "staff0002" {
		t.Errorf("user = %+v, %v", u, err)
	}
	if _, err := c.GetUser(ctx, "nobody"); !wecom.IsCode(err, wecom.CodeUserNotFound) {
		t.Errorf("unknown user: %v", err)
	}
}

func TestWelcomeMessageWindow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newSim(t, wecomtest.Options{})
	if _, err := s.PutStaff(wecomtest.Staff{UserID: "amy"}); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, s, nil)
	msg := func(code string) wecom.WelcomeMessage {
		return wecom.WelcomeMessage{WelcomeCode: code, Text: &wecom.Text{Content: "Welcome!"},
			Attachments: []wecom.Attachment{{MsgType: "link", Link: &wecom.Link{Title: "Coupon", URL: "https://example.com/c"}}}}
	}

	a, err := s.AddContact(ctx, "amy", wecomtest.Contact{}, "store_1")
	if err != nil {
		t.Fatal(err)
	}
	s.Advance(19 * time.Second)
	if err := c.SendWelcomeMsg(ctx, msg(a.WelcomeCode)); err != nil {
		t.Fatalf("within 20 s: %v", err)
	}
	if err := c.SendWelcomeMsg(ctx, msg(a.WelcomeCode)); !wecom.IsCode(err, wecom.CodeWelcomeCodeInvalid) {
		t.Errorf("second use: got %v, want 41050", err)
	}
	if sent := s.WelcomeMessages(); len(sent) != 1 || sent[0].ExternalUserID != a.Contact.ExternalUserID || sent[0].Message.Text.Content != "Welcome!" {
		t.Errorf("welcome messages = %+v", sent)
	}

	late, _ := s.AddContact(ctx, "amy", wecomtest.Contact{}, "")
	s.Advance(21 * time.Second)
	if err := c.SendWelcomeMsg(ctx, msg(late.WelcomeCode)); !wecom.IsCode(err, wecom.CodeWelcomeCodeInvalid) {
		t.Errorf("after 21 s: got %v, want 41050", err)
	}

	chatted, _ := s.AddContact(ctx, "amy", wecomtest.Contact{}, "")
	if err := s.MarkChatted("amy", chatted.Contact.ExternalUserID); err != nil {
		t.Fatal(err)
	}
	if err := c.SendWelcomeMsg(ctx, msg(chatted.WelcomeCode)); !wecom.IsCode(err, wecom.CodeWelcomeChatStarted) {
		t.Errorf("after a chat: got %v, want 41051", err)
	}
	if err := c.SendWelcomeMsg(ctx, wecom.WelcomeMessage{Text: &wecom.Text{Content: "x"}}); errs.KindOf(err) != errs.Invalid {
		t.Errorf("no welcome code: got %v", err)
	}
}

func TestContactWays(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newSim(t, wecomtest.Options{})
	for _, id := range []string{"amy", "bob"} {
		if _, err := s.PutStaff(wecomtest.Staff{UserID: id}); err != nil {
			t.Fatal(err)
		}
	}
	c := newClient(t, s, nil)
	if _, err := c.AddContactWay(ctx, wecom.ContactWay{Type: 2, Scene: 2, State: strings.Repeat("s", 31), Users: []string{"amy"}}); errs.KindOf(err) != errs.Invalid {
		t.Errorf("a 31-character state: got %v, want invalid before any call", err)
	}
	if n := s.CallCount("externalcontact/add_contact_way"); n != 0 {
		t.Errorf("add_contact_way called %d times for an invalid state", n)
	}
	way, err := c.AddContactWay(ctx, wecom.ContactWay{Type: 2, Scene: 2, State: "parcel_card", SkipVerify: true, Users: []string{"amy", "bob"}})
	if err != nil || way.ConfigID == "" || way.QRCode == "" {
		t.Fatalf("contact way = %+v, %v", way, err)
	}
	got, err := c.GetContactWay(ctx, way.ConfigID)
	if err != nil || got.State != "parcel_card" || len(got.Users) != 2 || !got.SkipVerify {
		t.Errorf("contact way read back = %+v, %v", got, err)
	}
	var users []string
	for range 3 {
		a, err := s.AddContactByWay(ctx, way.ConfigID, wecomtest.Contact{})
		if err != nil {
			t.Fatal(err)
		}
		users = append(users, a.Follow.UserID)
		if a.Follow.State != "parcel_card" {
			t.Errorf("state = %q", a.Follow.State)
		}
	}
	if strings.Join(users, ",") != "amy,bob,amy" {
		t.Errorf("members took turns as %v", users)
	}
	if err := c.DelContactWay(ctx, way.ConfigID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetContactWay(ctx, way.ConfigID); !wecom.IsCode(err, wecom.CodeInvalidContactWay) {
		t.Errorf("a deleted way: got %v, want 41044", err)
	}
}

// BenchmarkFullContactSync100k reads every customer relation of a simulated
// corp of 100k customers over 200 staff the way a full sync does: the follow
// users, then batch/get_by_user 100 members and 100 relations at a time.
func BenchmarkFullContactSync100k(b *testing.B) {
	ctx := context.Background()
	s := wecomtest.New(wecomtest.Options{})
	defer s.Close()
	if err := wecomtest.Populate(s.Corp, 100_000, 200, 1); err != nil {
		b.Fatal(err)
	}
	_, want := s.Counts()
	for b.Loop() {
		c, err := wecom.New(wecom.Config{BaseURL: s.URL(), CorpID: s.CorpID(), Secret: s.Secret(), Now: s.Now, Sleep: s.Sleep})
		if err != nil {
			b.Fatal(err)
		}
		users, err := c.FollowUserList(ctx)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for i := 0; i < len(users); i += wecom.MaxUsersPerBatch {
			batch := users[i:min(i+wecom.MaxUsersPerBatch, len(users))]
			for cursor := ""; ; {
				page, err := c.BatchGetByUser(ctx, batch, cursor, wecom.MaxContactsPerPage)
				if err != nil {
					b.Fatal(err)
				}
				n += len(page.Contacts)
				if cursor = page.NextCursor; cursor == "" {
					break
				}
			}
		}
		if n != want {
			b.Fatalf("read %d relations, the corp has %d", n, want)
		}
	}
	b.ReportMetric(float64(s.CallCount("externalcontact/batch/get_by_user"))/float64(b.N), "calls/op")
}

func TestGetExternalContactPagesFollowUsers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newSim(t, wecomtest.Options{})
	var follows []wecomtest.Follow
	for i := range 501 {
		id := fmt.Sprintf("s%03d", i)
		if _, err := s.PutStaff(wecomtest.Staff{UserID: id}); err != nil {
			t.Fatal(err)
		}
		follows = append(follows, wecomtest.Follow{UserID: id})
	}
	ct, err := s.PutContact(wecomtest.Contact{}, follows...)
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, s, nil)
	first, err := c.GetExternalContact(ctx, ct.ExternalUserID, "")
	if err != nil || len(first.FollowUsers) != 500 || first.NextCursor == "" {
		t.Fatalf("first page: %d follow users, next %q, %v", len(first.FollowUsers), first.NextCursor, err)
	}
	second, err := c.GetExternalContact(ctx, ct.ExternalUserID, first.NextCursor)
	if err != nil || len(second.FollowUsers) != 1 || second.NextCursor != "" || second.FollowUsers[0].UserID != follows[500].UserID {
		t.Errorf("second page: %+v, %v", second.FollowUsers, err)
	}
}
