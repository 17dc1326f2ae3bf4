package importer_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"log/slog"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/siyu-dev/siyu/internal/commerce"
	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/db/dbtest"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/importer"
	"github.com/siyu-dev/siyu/internal/page"
	"github.com/siyu-dev/siyu/internal/pii"
	"github.com/siyu-dev/siyu/internal/staff"
	"github.com/siyu-dev/siyu/internal/tenant"
)

type fixture struct {
	d         *db.DB
	tenants   *tenant.Service
	customers *customer.Service
	commerce  *commerce.Service
	svc       *importer.Service
}

func newFixture(t *testing.T, d *db.DB, o importer.Options) *fixture {
	t.Helper()
	master := make([]byte, 32)
	rand.Read(master)
	kr, err := pii.NewKeyring(master)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{d: d, tenants: tenant.NewService(d, tenant.Options{})}
	f.customers = customer.NewService(d, kr, nil)
	f.commerce = commerce.NewService(d, f.customers, staff.NewService(d), nil)
	f.customers.OnMerge("orders", f.commerce.MoveCustomer)
	o.Orders = f.commerce
	f.svc = importer.NewService(d, f.customers, f.tenants, testLog(t), o)
	return f
}

// testLog sends a service's log to the test's log.
func testLog(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// workspace creates a workspace and returns its owner-like principal.
func (f *fixture) workspace(t *testing.T, slug string) tenant.Principal {
	t.Helper()
	w, err := f.tenants.CreateWorkspace(context.Background(), tenant.NewWorkspace{Slug: slug, Name: "Brand " + slug})
	if err != nil {
		t.Fatal(err)
	}
	return tenant.System(w.ID)
}

func fixtureFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func xlsxOf(t *testing.T, rows [][]any) []byte {
	t.Helper()
	f := excelize.NewFile()
	defer f.Close()
	for i, r := range rows {
		cell, _ := excelize.CoordinatesToCellName(1, i+1)
		if err := f.SetSheetRow("Sheet1", cell, &r); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := f.Write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func (f *fixture) upload(t *testing.T, p tenant.Principal, kind, name string, data []byte) importer.Job {
	t.Helper()
	j, err := f.svc.Upload(context.Background(), p, importer.Upload{Kind: kind, FileName: name, Data: data})
	if err != nil {
		t.Fatalf("upload %s: %v", name, err)
	}
	return j
}

func (f *fixture) run(t *testing.T, p tenant.Principal, id int64) importer.Job {
	t.Helper()
	j, err := f.svc.RunNow(context.Background(), p, id, nil)
	if err != nil {
		t.Fatalf("run %d: %v", id, err)
	}
	if j.Status != importer.StatusDone {
		t.Fatalf("job %d is %s (%s)", id, j.Status, j.Error)
	}
	return j
}

// person is what an operator would call the same person: profile fields and
// identifiers.
type person struct {
	Name, Phone, Gender, Birthday, Province, City, Email string
	FirstSeen, LastSeen                                  int64
	Identities                                           string
	Traits                                               string
}

func (f *fixture) people(t *testing.T, tenantID int64) []person {
	t.Helper()
	ctx := context.Background()
	var out []person
	r := page.Request{Limit: page.MaxLimit}
	for {
		pg, err := f.customers.List(ctx, tenantID, customer.Query{ShowPII: true}, r)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range pg.Items {
			ids, err := f.customers.Identities(ctx, tenantID, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			var idv []string
			for _, id := range ids {
				idv = append(idv, id.Kind+":"+id.Value)
			}
			traits, _ := json.Marshal(c.Traits)
			out = append(out, person{Name: c.Name, Phone: c.Phone, Gender: c.Gender, Birthday: c.Birthday, Province: c.Province, City: c.City,
				Email: c.Email, FirstSeen: c.FirstSeenAt.Unix(), LastSeen: c.LastSeenAt.Unix(), Identities: strings.Join(idv, " "), Traits: string(traits)})
		}
		if pg.Next == "" {
			break
		}
		r.Cursor = pg.Next
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Identities < out[j].Identities })
	return out
}

func TestUploadFindsHeaderAndSuggestsMapping(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, importer.Options{})
		p := f.workspace(t, "upload")
		xlsx := xlsxOf(t, [][]any{
			{"会员列表"},
			{"姓名", "手机号", "性别", "生日", "省份", "城市", "邮箱", "会员ID", "会员等级", "备注"},
			{"张伟", 13800138000, "男", "1990-05-20", "上海", "上海", "zhangwei@example.com", "M0001", "金卡", "老客户"},
			{"王芳", "139 0013 9000", "女", "1988/3/7", "浙江", "杭州", nil, "M0002", "银卡", nil},
			{"李娜", "+86 137-0013-7000", 2, 19951101, "广东", "深圳", "lina@example.com", "M0003", nil, nil},
			{},
			{"刘洋", nil, "male", "1992年12月1日", "北京", "北京", nil, "M0004", "普通", "只有会员号"},
		})
		wantMapping := importer.Mapping{"姓名": "name", "手机号": "phone", "性别": "gender", "生日": "birthday", "省份": "province", "城市": "city",
			"邮箱": "email", "会员ID": "user_id", "会员等级": "trait:会员等级", "备注": "trait:备注"}
		for _, tc := range []struct {
			file, format, encoding string
			data                   []byte
			headerRow              int64
		}{
			{"customers_utf8_bom.csv", importer.FormatCSV, importer.EncodingUTF8, fixtureFile(t, "customers_utf8_bom.csv"), 3},
			{"customers_gbk.csv", importer.FormatCSV, importer.EncodingGB18030, fixtureFile(t, "customers_gbk.csv"), 3},
			{"customers.xlsx", importer.FormatXLSX, "", xlsx, 2},
		} {
			j := f.upload(t, p, importer.KindCustomers, tc.file, tc.data)
			if j.Format != tc.format || j.Encoding != tc.encoding || j.HeaderRow != tc.headerRow || j.RowsTotal != 4 || j.Status != importer.StatusUploaded {
				t.Errorf("%s: format %s/%s header row %d rows %d status %s", tc.file, j.Format, j.Encoding, j.HeaderRow, j.RowsTotal, j.Status)
			}
			if len(j.Columns) != 10 || j.Columns[0].Header != "姓名" || j.Columns[0].Samples[0] != "张伟" || j.Columns[8].Letter != "I" {
				t.Errorf("%s: columns %+v", tc.file, j.Columns)
			}
			for h, want := range wantMapping {
				if j.Mapping[h] != want {
					t.Errorf("%s: mapping[%s] = %q, want %q", tc.file, h, j.Mapping[h], want)
				}
			}
			if len(j.Preview) != 4 || j.Preview[3][0] != "刘洋" {
				t.Errorf("%s: preview %q", tc.file, j.Preview)
			}
		}
		// The same file again: the job warns that it was imported before.
		data := fixtureFile(t, "customers_utf8_bom.csv")
		first := f.upload(t, p, importer.KindCustomers, "a.csv", data)
		f.run(t, p, first.ID)
		again := f.upload(t, p, importer.KindCustomers, "a.csv", data)
		if len(again.PreviousImports) == 0 || again.PreviousImports[0].ID != first.ID || len(again.Warnings) != 1 ||
			!strings.Contains(again.Warnings[0], "already imported") {
			t.Errorf("re-upload: previous %+v warnings %q", again.PreviousImports, again.Warnings)
		}
	})
}

func TestImportCustomersThenReimportChangesNothing(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, importer.Options{ChunkSize: 2})
		p := f.workspace(t, "reimport")
		ctx := context.Background()
		data := fixtureFile(t, "customers_gbk.csv")
		j := f.run(t, p, f.upload(t, p, importer.KindCustomers, "gbk.csv", data).ID)
		if j.RowsProcessed != 4 || j.RowsOK != 4 || j.RowsFailed != 0 || j.Progress != 100 || j.Error != "" {
			t.Fatalf("job %+v", j)
		}
		before := f.people(t, p.TenantID)
		if len(before) != 4 {
			t.Fatalf("%d customers, want 4: %+v", len(before), before)
		}
		byName := map[string]person{}
		for _, c := range before {
			byName[c.Name] = c
		}
		zw := byName["张伟"]
		if zw.Phone != "+8613800138000" || zw.Gender != "male" || zw.Birthday != "1990-05-20" || zw.Province != "上海" ||
			zw.Email != "zhangwei@example.com" || !strings.Contains(zw.Identities, "user_id:M0001") ||
			zw.Traits != `{"会员等级":"金卡","备注":"老客户"}` {
			t.Errorf("张伟 = %+v", zw)
		}
		if ln := byName["李娜"]; ln.Gender != "female" || ln.Birthday != "1995-11-01" || ln.Phone != "+8613700137000" {
			t.Errorf("李娜 = %+v", ln)
		}
		if ly := byName["刘洋"]; ly.Birthday != "1992-12-01" || ly.Phone != "" {
			t.Errorf("刘洋 = %+v", ly)
		}
		c, err := f.customers.List(ctx, p.TenantID, customer.Query{Identifier: "user_id:M0002"}, page.Request{})
		if err != nil || len(c.Items) != 1 || c.Items[0].FirstSource != "import" {
			t.Fatalf("M0002: %+v %v", c.Items, err)
		}

		// The same file again: nothing changes, not even last-seen times
		// (its rows are observed when the file was first imported).
		time.Sleep(1100 * time.Millisecond)
		f.run(t, p, f.upload(t, p, importer.KindCustomers, "again.csv", data).ID)
		if after := f.people(t, p.TenantID); !slices.Equal(before, after) {
			t.Errorf("re-import changed customers:\nbefore %+v\nafter  %+v", before, after)
		}
		// The same rows in another file (UTF-8) are a new observation: the
		// same people, seen again.
		f.run(t, p, f.upload(t, p, importer.KindCustomers, "utf8.csv", fixtureFile(t, "customers_utf8_bom.csv")).ID)
		after := f.people(t, p.TenantID)
		for i := range after {
			if after[i].LastSeen <= before[i].LastSeen {
				t.Errorf("%s was not seen again", after[i].Name)
			}
			after[i].LastSeen = before[i].LastSeen
		}
		if !slices.Equal(before, after) {
			t.Errorf("importing the same rows changed customers:\nbefore %+v\nafter  %+v", before, after)
		}
		merges, err := f.customers.Merges(ctx, p.TenantID, c.Items[0].ID)
		if err != nil || len(merges) != 0 {
			t.Errorf("merges %+v %v", merges, err)
		}
	})
}

func TestDryRunReportsRowErrorsAndWritesNothing(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, importer.Options{})
		p := f.workspace(t, "dryrun")
		ctx := context.Background()
		up := f.upload(t, p, importer.KindCustomers, "errors.csv", fixtureFile(t, "customers_errors.csv"))
		j, err := f.svc.DryRun(ctx, p, up.ID)
		if err != nil {
			t.Fatal(err)
		}
		rep := j.DryRun
		if j.Status != importer.StatusDryRun || rep == nil || rep.Rows != 6 || rep.Valid != 2 || rep.Invalid != 4 {
			t.Fatalf("status %s report %+v", j.Status, rep)
		}
		type got struct {
			Row          int64
			Column, Code string
		}
		var list []got
		for _, e := range rep.Errors {
			if e.Message == "" {
				t.Errorf("row error without a message: %+v", e)
			}
			list = append(list, got{e.Row, e.Column, e.Code})
		}
		want := []got{
			{3, "phone", "invalid_phone"},
			{4, "gender", "invalid_gender"},
			{4, "birthday", "invalid_date"},
			{5, "", "no_identifier"},
			{6, "phone", "phone_masked"},
		}
		if !slices.Equal(list, want) {
			t.Errorf("errors %+v\nwant   %+v", list, want)
		}
		if rep.ErrorsByCode["invalid_phone"] != 1 || rep.ErrorsByCode["no_identifier"] != 1 {
			t.Errorf("by code %v", rep.ErrorsByCode)
		}
		// Listed one page at a time, in row order.
		pg, err := f.svc.RowErrors(ctx, p.TenantID, up.ID, importer.PhaseDryRun, page.Request{Limit: 2})
		if err != nil || len(pg.Items) != 2 || pg.Next == "" || pg.Items[0].Row != 3 {
			t.Fatalf("page 1: %+v %v", pg, err)
		}
		pg, err = f.svc.RowErrors(ctx, p.TenantID, up.ID, importer.PhaseDryRun, page.Request{Limit: 2, Cursor: pg.Next})
		if err != nil || len(pg.Items) != 2 || pg.Items[0].Code != "invalid_date" || pg.Items[1].Row != 5 {
			t.Fatalf("page 2: %+v %v", pg, err)
		}
		if n, _ := f.customers.Count(ctx, p.TenantID); n != 0 {
			t.Fatalf("a dry run wrote %d customers", n)
		}

		// The run imports the valid rows and records the others.
		j = f.run(t, p, up.ID)
		if j.RowsOK != 2 || j.RowsFailed != 4 || !strings.Contains(j.Error, "4 of 6 rows failed") {
			t.Errorf("run: %+v", j)
		}
		if n, _ := f.customers.Count(ctx, p.TenantID); n != 2 {
			t.Errorf("%d customers, want 2", n)
		}
		runErrs, err := f.svc.RowErrors(ctx, p.TenantID, up.ID, importer.PhaseRun, page.Request{})
		if err != nil || len(runErrs.Items) != 5 {
			t.Errorf("run errors %+v %v", runErrs.Items, err)
		}
		// A finished job cannot be changed or run again.
		if _, err := f.svc.SetMapping(ctx, p, up.ID, importer.MappingInput{Mapping: up.Mapping}); errs.KindOf(err) != errs.Conflict {
			t.Errorf("mapping a finished job: %v", err)
		}
		if _, err := f.svc.Start(ctx, p, up.ID); errs.CodeOf(err) != "import_finished" {
			t.Errorf("running a finished job: %v", err)
		}
	})
}

func TestMappingValidationAndCustomTraits(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, importer.Options{})
		p := f.workspace(t, "mapping")
		ctx := context.Background()
		up := f.upload(t, p, importer.KindCustomers, "errors.csv", fixtureFile(t, "customers_errors.csv"))
		for _, tc := range []struct {
			m    importer.Mapping
			code string
		}{
			{importer.Mapping{"name": "name", "gender": "gender"}, "identifier_unmapped"},
			{importer.Mapping{"phone": "phone", "nope": "name"}, "invalid_mapping"},
			{importer.Mapping{"phone": "phone", "name": "shoe_size"}, "invalid_mapping"},
			{importer.Mapping{"phone": "phone", "name": "name", "gender": "name"}, "invalid_mapping"},
			{importer.Mapping{"phone": "phone", "name": "trait:city"}, "invalid_mapping"},
		} {
			if _, err := f.svc.SetMapping(ctx, p, up.ID, importer.MappingInput{Mapping: tc.m}); errs.CodeOf(err) != tc.code {
				t.Errorf("mapping %v: %v, want %s", tc.m, err, tc.code)
			}
		}
		src := "offline_fair"
		j, err := f.svc.SetMapping(ctx, p, up.ID, importer.MappingInput{Source: &src,
			Mapping: importer.Mapping{"phone": "phone", "user_id": "user_id", "name": "trait:nick", "gender": "trait:性别原文"}})
		if err != nil {
			t.Fatal(err)
		}
		if j.Mapping["birthday"] != "" || j.Mapping["name"] != "trait:nick" || j.Source != "offline_fair" {
			t.Errorf("mapping %v source %q", j.Mapping, j.Source)
		}
		// Rows 2 and 4 have a valid phone and user id; 3's phone is bad, 5
		// has no identifier, 6 a masked phone, 7 a blocked user id (its
		// unionid column is now ignored).
		if j = f.run(t, p, up.ID); j.RowsOK != 2 || j.RowsFailed != 4 {
			t.Errorf("ok %d failed %d", j.RowsOK, j.RowsFailed)
		}
		c, err := f.customers.List(ctx, p.TenantID, customer.Query{Identifier: "user_id:u3"}, page.Request{})
		if err != nil || len(c.Items) != 1 {
			t.Fatalf("u3: %+v %v", c, err)
		}
		if got := c.Items[0]; got.Name != "" || got.Traits["nick"] != "Carol" || got.Traits["性别原文"] != "x" || got.FirstSource != "offline_fair" {
			t.Errorf("u3 = %+v", got)
		}
	})
}

func TestImportXLSXWithSpreadsheetTypes(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, importer.Options{})
		p := f.workspace(t, "xlsx")
		ctx := context.Background()
		sh, _ := time.LoadLocation("Asia/Shanghai")
		xf := excelize.NewFile()
		defer xf.Close()
		xf.SetSheetRow("Sheet1", "A1", &[]any{"手机", "生日", "注册时间", "积分"})
		xf.SetSheetRow("Sheet1", "A2", &[]any{13800138000, time.Date(1990, 5, 20, 0, 0, 0, 0, time.UTC), time.Date(2025, 6, 1, 9, 30, 0, 0, time.UTC), 120})
		var buf bytes.Buffer
		xf.Write(&buf)
		up := f.upload(t, p, importer.KindCustomers, "types.xlsx", buf.Bytes())
		if up.Mapping["生日"] != "birthday" || up.Mapping["注册时间"] != "first_seen" || up.Mapping["积分"] != "trait:积分" {
			t.Fatalf("mapping %v", up.Mapping)
		}
		f.run(t, p, up.ID)
		c, err := f.customers.List(ctx, p.TenantID, customer.Query{Search: "13800138000", ShowPII: true}, page.Request{})
		if err != nil || len(c.Items) != 1 {
			t.Fatalf("%+v %v", c, err)
		}
		got := c.Items[0]
		// Spreadsheet dates are wall-clock times in the workspace's zone.
		if got.Birthday != "1990-05-20" || !got.FirstSeenAt.Equal(time.Date(2025, 6, 1, 9, 30, 0, 0, sh)) || got.Traits["积分"] != "120" {
			t.Errorf("customer %+v first seen %v", got, got.FirstSeenAt.In(sh))
		}
	})
}

func TestExportRoundTrip(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, importer.Options{})
		ctx := context.Background()
		a := f.workspace(t, "source-brand")
		f.run(t, a, f.upload(t, a, importer.KindCustomers, "c.csv", fixtureFile(t, "customers_utf8_bom.csv")).ID)
		// A customer known only by WeCom and unionid, and one with a formula-like name.
		err := d.Tx(ctx, func(tx *sql.Tx) error {
			_, err := f.customers.Resolve(ctx, tx, a.TenantID, customer.Observation{At: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
				Identities: []customer.Identity{{Kind: customer.KindWeComExtID, Value: "wmABC"}, {Kind: customer.KindUnionID, Value: "oU-1"}},
				Traits:     map[string]any{"name": "=cmd|' /C calc'!A0", "city": "苏州"}, Source: "wecom"})
			if err != nil {
				return err
			}
			_, err = f.customers.Resolve(ctx, tx, a.TenantID, customer.Observation{At: time.Date(2026, 2, 2, 3, 4, 5, 0, time.UTC),
				Identities: []customer.Identity{{Kind: customer.KindWeComExtID, Value: "wmABC"}}, Source: "wecom"})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		want := f.people(t, a.TenantID)
		strip := func(ps []person) []person {
			out := slices.Clone(ps)
			for i := range out {
				out[i].Traits = "" // custom traits are not exported
			}
			return out
		}
		for _, tc := range []struct{ format, lang string }{{"csv", "en"}, {"xlsx", "zh-CN"}, {"csv", "zh-CN"}, {"xlsx", "en"}} {
			t.Run(tc.format+"-"+tc.lang, func(t *testing.T) {
				ex, err := f.svc.NewExport(ctx, a, importer.ExportRequest{Format: tc.format, Lang: tc.lang})
				if err != nil {
					t.Fatal(err)
				}
				var buf bytes.Buffer
				if err := ex.WriteTo(ctx, &buf); err != nil {
					t.Fatal(err)
				}
				if tc.format == "csv" && !bytes.HasPrefix(buf.Bytes(), []byte("\xEF\xBB\xBF")) {
					t.Error("the CSV has no BOM")
				}
				b := f.workspace(t, "copy-"+strings.ToLower(strings.ReplaceAll(tc.format+tc.lang, "-", "")))
				up := f.upload(t, b, importer.KindCustomers, ex.FileName, buf.Bytes())
				if up.Mapping["ID"] != "" || up.Mapping["系统ID"] != "" {
					t.Errorf("the export's own id column is mapped: %v", up.Mapping)
				}
				if j := f.run(t, b, up.ID); j.RowsFailed != 0 {
					t.Fatalf("import of the export: %+v", j)
				}
				got := f.people(t, b.TenantID)
				if !slices.Equal(strip(want), strip(got)) {
					t.Errorf("round trip differs:\nwant %+v\ngot  %+v", strip(want), strip(got))
				}
			})
		}
		// Without the right to see personal data, phones are masked, and an
		// import of that file says why the phones are refused.
		op := tenant.Principal{TenantID: a.TenantID, Kind: tenant.ActorUser, ID: 9, Name: "op", Role: tenant.RoleOperator}
		ex, err := f.svc.NewExport(ctx, op, importer.ExportRequest{Format: "csv", Search: "张伟"})
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := ex.WriteTo(ctx, &buf); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
		if len(lines) != 2 || !strings.Contains(lines[1], "138****8000") || strings.Contains(lines[1], "13800138000") {
			t.Errorf("masked export: %q", lines)
		}
		if _, err := f.svc.NewExport(ctx, a, importer.ExportRequest{Format: "pdf"}); errs.CodeOf(err) != "invalid_format" {
			t.Errorf("pdf export: %v", err)
		}
		if _, err := f.svc.NewExport(ctx, a, importer.ExportRequest{Identifier: "nonsense"}); errs.CodeOf(err) != "invalid_identifier" {
			t.Errorf("bad filter: %v", err)
		}
	})
}

func TestRunResumesAfterAnInterruptedWorker(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		now := time.Now()
		clock := func() time.Time { return now }
		f := newFixture(t, d, importer.Options{ChunkSize: 1, Now: clock})
		p := f.workspace(t, "resume")
		up := f.upload(t, p, importer.KindCustomers, "c.csv", fixtureFile(t, "customers_utf8_bom.csv"))

		// The worker dies (its context ends) after the first chunk commits.
		ctx, cancel := context.WithCancel(context.Background())
		_, err := f.svc.RunNow(ctx, p, up.ID, func(pr importer.Progress) {
			if pr.Processed == 1 {
				cancel()
			}
		})
		if err == nil {
			t.Fatal("an interrupted run returned no error")
		}
		j, _ := f.svc.Job(context.Background(), p.TenantID, up.ID, true)
		if j.Status != importer.StatusRunning || j.RowsProcessed != 1 || j.Progress != 25 {
			t.Fatalf("after the interruption: %s %d %d%%", j.Status, j.RowsProcessed, j.Progress)
		}
		// Another worker (a restarted server) resumes it from row 2.
		other := importer.NewService(d, f.customers, f.tenants, testLog(t), importer.Options{ChunkSize: 1, Poll: 10 * time.Millisecond, Now: clock})
		wctx, stop := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { other.Work(wctx); close(done) }()
		deadline := time.Now().Add(20 * time.Second)
		for {
			j, _ = f.svc.Job(context.Background(), p.TenantID, up.ID, true)
			if j.Status == importer.StatusDone || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		stop()
		<-done
		if j.Status != importer.StatusDone || j.RowsProcessed != 4 || j.RowsOK != 4 {
			t.Fatalf("after resuming: %+v", j)
		}
		if n, _ := f.customers.Count(context.Background(), p.TenantID); n != 4 {
			t.Errorf("%d customers, want 4", n)
		}
	})
}

func TestCancelStopsARun(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, importer.Options{ChunkSize: 1})
		p := f.workspace(t, "cancel")
		ctx := context.Background()
		up := f.upload(t, p, importer.KindCustomers, "c.csv", fixtureFile(t, "customers_utf8_bom.csv"))
		j, err := f.svc.RunNow(ctx, p, up.ID, func(pr importer.Progress) {
			if pr.Processed == 2 {
				if _, err := f.svc.Cancel(ctx, p, up.ID); err != nil {
					t.Error(err)
				}
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		if j.Status != importer.StatusCancelled || j.RowsProcessed != 2 {
			t.Fatalf("%s after %d rows", j.Status, j.RowsProcessed)
		}
		if n, _ := f.customers.Count(ctx, p.TenantID); n != 2 {
			t.Errorf("%d customers, want 2", n)
		}
		if _, err := f.svc.Start(ctx, p, up.ID); errs.KindOf(err) != errs.Conflict {
			t.Errorf("restart a cancelled job: %v", err)
		}
	})
}

func TestImportOrders(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, importer.Options{})
		p := f.workspace(t, "orders")
		ctx := context.Background()
		data := fixtureFile(t, "orders.csv")
		up := f.upload(t, p, importer.KindOrders, "orders.csv", data)
		want := importer.Mapping{"订单号": "order_id", "手机号": "phone", "渠道": "channel", "订单状态": "status", "实付金额": "paid",
			"优惠金额": "discount", "支付时间": "paid_at", "商品编码": "sku", "商品名称": "product_name", "数量": "quantity", "单价": "unit_price"}
		for h, w := range want {
			if up.Mapping[h] != w {
				t.Errorf("mapping[%s] = %q, want %q", h, up.Mapping[h], w)
			}
		}
		j, err := f.svc.DryRun(ctx, p, up.ID)
		if err != nil {
			t.Fatal(err)
		}
		if r := j.DryRun; r.Rows != 5 || r.Valid != 4 || r.Invalid != 1 || len(r.Errors) != 1 || r.Errors[0].Row != 6 || r.Errors[0].Code != "invalid_amount" {
			t.Fatalf("dry run %+v", r)
		}
		j = f.run(t, p, up.ID)
		if j.RowsOK != 4 || j.RowsFailed != 1 {
			t.Fatalf("run %+v", j)
		}
		t1, err := f.commerce.Order(ctx, p.TenantID, commerce.SourceTmall, "T1001")
		if err != nil {
			t.Fatal(err)
		}
		if t1.TotalFen != 20000 || t1.DiscountFen != 1000 || t1.PaidFen != 19000 || t1.Status != commerce.Paid || len(t1.Items) != 2 ||
			t1.Items[0].UnitPriceFen != 5040 || t1.Items[0].Quantity != 2 || t1.Items[1].SKU != "SKU-B" {
			t.Errorf("T1001 = %+v", t1)
		}
		sh, _ := time.LoadLocation("Asia/Shanghai")
		if !t1.PaidAt.Equal(time.Date(2026, 2, 1, 10, 0, 0, 0, sh)) {
			t.Errorf("T1001 paid at %v", t1.PaidAt)
		}
		j2, err := f.commerce.Order(ctx, p.TenantID, commerce.SourceJD, "J2001")
		if err != nil || j2.PaidFen != 129900 || len(j2.Items) != 0 {
			t.Errorf("J2001 = %+v %v", j2, err)
		}
		m1, err := f.commerce.Order(ctx, p.TenantID, commerce.SourceMiniApp, "M3001")
		if err != nil || m1.Status != commerce.Pending || m1.TotalFen != 5990 {
			t.Errorf("M3001 = %+v %v", m1, err)
		}
		buyer, err := f.customers.List(ctx, p.TenantID, customer.Query{Search: "13800138000"}, page.Request{})
		if err != nil || len(buyer.Items) != 1 || buyer.Items[0].ID != t1.CustomerID {
			t.Errorf("buyer %+v %v", buyer, err)
		}
		// Again: the same orders, nothing changed.
		n, _ := f.customers.Count(ctx, p.TenantID)
		f.run(t, p, f.upload(t, p, importer.KindOrders, "orders.csv", data).ID)
		again, _ := f.commerce.Order(ctx, p.TenantID, commerce.SourceTmall, "T1001")
		if !again.UpdatedAt.Equal(t1.UpdatedAt) || len(again.Items) != 2 {
			t.Errorf("re-import changed T1001: %+v", again)
		}
		if n2, _ := f.customers.Count(ctx, p.TenantID); n2 != n {
			t.Errorf("customers %d → %d", n, n2)
		}
		// Rows of one order must be adjacent.
		split := "订单号,手机号,渠道,实付金额,支付时间,商品编码,单价\nA1,13800138000,jd,10,2026-01-01,S1,10\nA2,13800138000,jd,5,2026-01-01,S2,5\nA1,13800138000,jd,10,2026-01-01,S3,10\n"
		sj, err := f.svc.DryRun(ctx, p, f.upload(t, p, importer.KindOrders, "split.csv", []byte(split)).ID)
		if err != nil {
			t.Fatal(err)
		}
		if r := sj.DryRun; r.Invalid != 1 || r.Errors[0].Code != "order_rows_apart" || r.Errors[0].Row != 4 {
			t.Errorf("split order: %+v", r)
		}
	})
}

func TestJobsAreIsolatedByWorkspace(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, importer.Options{})
		ctx := context.Background()
		a, b := f.workspace(t, "brand-a"), f.workspace(t, "brand-b")
		ja := f.upload(t, a, importer.KindCustomers, "a.csv", fixtureFile(t, "customers_errors.csv"))
		if _, err := f.svc.Job(ctx, b.TenantID, ja.ID, true); errs.KindOf(err) != errs.NotFound {
			t.Errorf("B reads A's job: %v", err)
		}
		for name, call := range map[string]func() error{
			"mapping": func() error { _, err := f.svc.SetMapping(ctx, b, ja.ID, importer.MappingInput{}); return err },
			"dry run": func() error { _, err := f.svc.DryRun(ctx, b, ja.ID); return err },
			"run":     func() error { _, err := f.svc.Start(ctx, b, ja.ID); return err },
			"cancel":  func() error { _, err := f.svc.Cancel(ctx, b, ja.ID); return err },
			"errors": func() error {
				_, err := f.svc.RowErrors(ctx, b.TenantID, ja.ID, importer.PhaseDryRun, page.Request{})
				return err
			},
		} {
			if err := call(); errs.KindOf(err) != errs.NotFound {
				t.Errorf("B %s on A's job: %v", name, err)
			}
		}
		pg, err := f.svc.Jobs(ctx, b.TenantID, page.Request{}, true)
		if err != nil || len(pg.Items) != 0 {
			t.Errorf("B lists %+v %v", pg.Items, err)
		}
		// The same file in B is not "imported before" because A imported it.
		f.run(t, a, ja.ID)
		jb := f.upload(t, b, importer.KindCustomers, "a.csv", fixtureFile(t, "customers_errors.csv"))
		if len(jb.PreviousImports) != 0 || len(jb.Warnings) != 0 {
			t.Errorf("B sees A's imports: %+v", jb.PreviousImports)
		}
		// A staff member (read-only on customers) may not import.
		staffP := tenant.Principal{TenantID: a.TenantID, Kind: tenant.ActorUser, ID: 5, Name: "staff", Role: tenant.RoleStaff}
		if _, err := f.svc.Upload(ctx, staffP, importer.Upload{Kind: "customers", FileName: "x.csv", Data: []byte("phone\n13800138000\n")}); errs.KindOf(err) != errs.Forbidden {
			t.Errorf("staff upload: %v", err)
		}
	})
}

func TestUploadRejectsBadFiles(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, importer.Options{MaxFileBytes: 64})
		p := f.workspace(t, "badfiles")
		for _, tc := range []struct {
			kind string
			data []byte
			code string
		}{
			{"customers", bytes.Repeat([]byte("a"), 65), "file_too_large"},
			{"customers", nil, "empty_file"},
			{"customers", []byte("\n\n"), "empty_file"},
			{"customers", []byte{0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1, 0}, "unsupported_format"},
			{"customers", []byte("PK\x03\x04 not really a zip"), "unreadable_xlsx"},
			{"coupons", []byte("a\n"), "invalid_kind"},
		} {
			_, err := f.svc.Upload(context.Background(), p, importer.Upload{Kind: tc.kind, FileName: "f", Data: tc.data})
			if errs.CodeOf(err) != tc.code {
				t.Errorf("%s %q: %v, want %s", tc.kind, tc.data[:min(len(tc.data), 8)], err, tc.code)
			}
		}
	})
}
