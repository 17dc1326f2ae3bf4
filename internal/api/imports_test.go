package api_test

import (
	"bytes"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/siyu-dev/siyu/internal/app/apptest"
	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/importer"
	"github.com/siyu-dev/siyu/internal/tenant"
)

const importCSV = "姓名,手机号,性别,生日,会员ID,会员等级\n" +
	"张伟,13800138000,男,1990-05-20,M0001,金卡\n" +
	"王芳,1390013900,女,1988/3/7,M0002,银卡\n" + // row 3: the phone is a digit short
	"李娜,13700137000,2,1995-13-01,M0003,\n" + // row 4: no such month
	"刘洋,,male,,M0004,普通\n"

// send makes a request with any body and content type.
func send(t *testing.T, s *apptest.Server, method, path, key, contentType string, body io.Reader) apptest.Response {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return apptest.Response{Status: res.StatusCode, Header: res.Header, Body: b}
}

func multipartFile(t *testing.T, name string, data []byte) (string, io.Reader) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if err := mw.WriteField("kind", "customers"); err != nil {
		t.Fatal(err)
	}
	fw, err := mw.CreateFormFile("file", name)
	if err != nil {
		t.Fatal(err)
	}
	fw.Write(data)
	mw.Close()
	return mw.FormDataContentType(), &buf
}

func TestImportWizardFlow(t *testing.T) {
	eachServer(t, func(t *testing.T, s *apptest.Server) {
		w := s.NewWorkspace(t, "importer")
		ct, body := multipartFile(t, "会员.csv", []byte(importCSV))
		r := send(t, s, "POST", "/api/v1/imports", w.Key, ct, body)
		if r.Status != 201 {
			t.Fatalf("upload: %d %s", r.Status, r.Body)
		}
		var job importer.Job
		r.JSON(t, &job)
		if job.FileName != "会员.csv" || job.Kind != "customers" || job.RowsTotal != 4 || job.Status != "uploaded" || len(job.Columns) != 6 ||
			job.Mapping["手机号"] != "phone" || job.Mapping["会员等级"] != "trait:会员等级" || len(job.Preview) != 4 || job.Preview[0][1] != "13800138000" {
			t.Fatalf("upload: %s", r.Body)
		}
		base := fmt.Sprintf("/api/v1/imports/%d", job.ID)

		// The wizard's choices: the fields, a mapping, its validation.
		var fields struct{ Fields []importer.Field }
		s.Do(t, "GET", "/api/v1/imports/fields?kind=orders", w.Key, nil).JSON(t, &fields)
		if len(fields.Fields) == 0 || !strings.Contains(fmt.Sprint(fields.Fields), "order_id") {
			t.Errorf("order fields: %+v", fields)
		}
		expectProblem(t, s.Do(t, "PUT", base+"/mapping", w.Key, map[string]any{"mapping": map[string]string{"姓名": "name"}}), 422, "identifier_unmapped")
		mapping := map[string]string{"姓名": "name", "手机号": "phone", "性别": "gender", "生日": "birthday", "会员ID": "user_id", "会员等级": "trait:level"}
		r = s.Do(t, "PUT", base+"/mapping", w.Key, map[string]any{"mapping": mapping, "source": "老会员系统"})
		if r.Status != 200 {
			t.Fatalf("mapping: %d %s", r.Status, r.Body)
		}
		r.JSON(t, &job)
		if job.Mapping["会员等级"] != "trait:level" || job.Source != "老会员系统" {
			t.Fatalf("mapping: %s", r.Body)
		}

		// Dry run: row errors with row numbers, nothing written.
		r = s.Do(t, "POST", base+"/dry-run", w.Key, nil)
		if r.Status != 200 {
			t.Fatalf("dry run: %d %s", r.Status, r.Body)
		}
		r.JSON(t, &job)
		if rep := job.DryRun; job.Status != "dry_run" || rep == nil || rep.Valid != 2 || rep.Invalid != 2 || len(rep.Errors) != 2 ||
			rep.Errors[0].Row != 3 || rep.Errors[0].Code != "invalid_phone" || rep.Errors[1].Row != 4 || rep.Errors[1].Column != "生日" {
			t.Fatalf("dry run: %s", r.Body)
		}
		var errsPage struct {
			Items      []importer.RowError
			NextCursor string `json:"next_cursor"`
		}
		s.Do(t, "GET", base+"/errors?limit=1", w.Key, nil).JSON(t, &errsPage)
		if len(errsPage.Items) != 1 || errsPage.Items[0].Row != 3 || errsPage.NextCursor == "" {
			t.Fatalf("errors page 1: %+v", errsPage)
		}
		s.Do(t, "GET", base+"/errors?limit=1&cursor="+errsPage.NextCursor, w.Key, nil).JSON(t, &errsPage)
		if len(errsPage.Items) != 1 || errsPage.Items[0].Row != 4 || errsPage.NextCursor != "" {
			t.Fatalf("errors page 2: %+v", errsPage)
		}
		if n, _ := s.App.Customers.Count(t.Context(), w.ID); n != 0 {
			t.Fatalf("the dry run wrote %d customers", n)
		}

		// Run: 202, then progress until done.
		r = s.Do(t, "POST", base+"/run", w.Key, nil)
		if r.Status != 202 {
			t.Fatalf("run: %d %s", r.Status, r.Body)
		}
		deadline := time.Now().Add(30 * time.Second)
		for job.Status != "done" && job.Status != "failed" && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
			s.Do(t, "GET", base, w.Key, nil).JSON(t, &job)
		}
		if job.Status != "done" || job.RowsProcessed != 4 || job.RowsOK != 2 || job.RowsFailed != 2 || job.Progress != 100 {
			t.Fatalf("after the run: %+v", job)
		}
		expectProblem(t, s.Do(t, "POST", base+"/run", w.Key, nil), 409, "import_finished")
		var custs struct{ Items []customer.Customer }
		s.Do(t, "GET", "/api/v1/customers?identifier=user_id:M0001", w.Key, nil).JSON(t, &custs)
		if len(custs.Items) != 1 || custs.Items[0].Name != "张伟" || custs.Items[0].Traits["level"] != "金卡" || custs.Items[0].FirstSource != "老会员系统" {
			t.Fatalf("imported customer: %+v", custs.Items)
		}

		// The same file again, as a raw body: the job says it was imported.
		r = send(t, s, "POST", "/api/v1/imports?kind=customers&filename=again.csv", w.Key, "text/csv", strings.NewReader(importCSV))
		if r.Status != 201 {
			t.Fatalf("raw upload: %d %s", r.Status, r.Body)
		}
		var again importer.Job
		r.JSON(t, &again)
		if again.FileName != "again.csv" || len(again.PreviousImports) != 1 || again.PreviousImports[0].ID != job.ID || len(again.Warnings) != 1 {
			t.Fatalf("raw upload: %s", r.Body)
		}
		var list struct{ Items []importer.Job }
		s.Do(t, "GET", "/api/v1/imports?limit=10", w.Key, nil).JSON(t, &list)
		if len(list.Items) != 2 || list.Items[0].ID != again.ID {
			t.Fatalf("list: %+v", list.Items)
		}
		r = s.Do(t, "POST", fmt.Sprintf("/api/v1/imports/%d/cancel", again.ID), w.Key, nil)
		if r.Status != 200 || !strings.Contains(string(r.Body), `"status":"cancelled"`) {
			t.Fatalf("cancel: %d %s", r.Status, r.Body)
		}
	})
}

func TestImportUploadLimitsAndPermissions(t *testing.T) {
	eachServer(t, func(t *testing.T, s *apptest.Server) {
		w := s.NewWorkspace(t, "limits")
		limit := s.App.Imports.MaxFileBytes()
		// Declared too large: refused before reading.
		p := expectProblem(t, send(t, s, "POST", "/api/v1/imports?filename=big.csv", w.Key, "text/csv",
			bytes.NewReader(make([]byte, limit+2<<20))), 413, "file_too_large")
		if !strings.Contains(p.Detail, "50 MB") {
			t.Errorf("the problem does not name the limit: %q", p.Detail)
		}
		// Streamed without a length: refused once past the limit.
		ct, _ := multipartFile(t, "x", nil)
		pr, pw := io.Pipe()
		go func() {
			mw := multipart.NewWriter(pw)
			mw.SetBoundary(strings.TrimPrefix(ct, "multipart/form-data; boundary="))
			fw, _ := mw.CreateFormFile("file", "big.csv")
			chunk := bytes.Repeat([]byte("13800138000\n"), 1<<16)
			for n := int64(0); n <= limit; n += int64(len(chunk)) {
				if _, err := fw.Write(chunk); err != nil {
					break
				}
			}
			mw.Close()
			pw.Close()
		}()
		expectProblem(t, send(t, s, "POST", "/api/v1/imports", w.Key, ct, pr), 413, "file_too_large")
		pr.Close()

		expectProblem(t, send(t, s, "POST", "/api/v1/imports", w.Key, "text/csv", strings.NewReader("")), 422, "empty_file")
		expectProblem(t, send(t, s, "POST", "/api/v1/imports?kind=coupons", w.Key, "text/csv", strings.NewReader("a\n")), 422, "validation_failed")

		// A staff key may read and export customers, not import them.
		_, staffKey, err := s.App.Tenant.CreateAPIKey(t.Context(), tenant.System(w.ID), "staff", tenant.RoleStaff)
		if err != nil {
			t.Fatal(err)
		}
		expectProblem(t, send(t, s, "POST", "/api/v1/imports?filename=a.csv", staffKey, "text/csv", strings.NewReader(importCSV)), 403, "forbidden")
		expectProblem(t, s.Do(t, "GET", "/api/v1/imports", staffKey, nil), 403, "forbidden")
		expectProblem(t, send(t, s, "POST", "/api/v1/imports", "", "text/csv", strings.NewReader(importCSV)), 401, "missing_api_key")
	})
}

func TestCustomerExportAndIsolation(t *testing.T) {
	eachServer(t, func(t *testing.T, s *apptest.Server) {
		a := s.NewWorkspace(t, "export-a")
		b := s.NewWorkspace(t, "export-b")
		ctx := t.Context()
		for _, c := range []customer.NewCustomer{
			{Name: "张伟", Phone: "13800138000", Gender: "male", City: "上海"},
			{Name: "王芳", Phone: "13900139000", Gender: "female"},
		} {
			if _, err := s.App.Customers.Create(ctx, a.ID, c); err != nil {
				t.Fatal(err)
			}
		}
		r := s.Do(t, "GET", "/api/v1/customers/export?format=csv&lang=zh-CN", a.Key, nil)
		if r.Status != 200 || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/csv") ||
			!strings.Contains(r.Header.Get("Content-Disposition"), `attachment; filename="customers-`) {
			t.Fatalf("csv export: %d %v %s", r.Status, r.Header, r.Body)
		}
		text := string(r.Body)
		if !strings.HasPrefix(text, "\uFEFF系统ID,姓名,手机号") || !strings.Contains(text, "张伟,13800138000") || strings.Count(text, "\n") != 3 {
			t.Fatalf("csv export:\n%s", text)
		}
		r = s.Do(t, "GET", "/api/v1/customers/export?format=xlsx&q=王", a.Key, nil)
		if r.Status != 200 {
			t.Fatalf("xlsx export: %d %s", r.Status, r.Body)
		}
		xf, err := excelize.OpenReader(bytes.NewReader(r.Body))
		if err != nil {
			t.Fatal(err)
		}
		rows, _ := xf.GetRows(xf.GetSheetName(0))
		xf.Close()
		if len(rows) != 2 || rows[0][1] != "Name" || rows[1][1] != "王芳" || rows[1][2] != "13900139000" {
			t.Fatalf("xlsx rows %q", rows)
		}
		expectProblem(t, s.Do(t, "GET", "/api/v1/customers/export?identifier=nonsense", a.Key, nil), 422, "invalid_identifier")
		expectProblem(t, s.Do(t, "GET", "/api/v1/customers/export?format=pdf", a.Key, nil), 422, "validation_failed")

		// A role without the right to see personal data gets masked phones.
		_, staffKey, err := s.App.Tenant.CreateAPIKey(ctx, tenant.System(a.ID), "staff", tenant.RoleStaff)
		if err != nil {
			t.Fatal(err)
		}
		text = string(s.Do(t, "GET", "/api/v1/customers/export", staffKey, nil).Body)
		if !strings.Contains(text, "138****8000") || strings.Contains(text, "13800138000") {
			t.Fatalf("staff export:\n%s", text)
		}

		// B sees none of A's customers or imports.
		text = string(s.Do(t, "GET", "/api/v1/customers/export", b.Key, nil).Body)
		if strings.Count(text, "\n") != 1 {
			t.Fatalf("B's export has A's customers:\n%s", text)
		}
		ct, body := multipartFile(t, "a.csv", []byte(importCSV))
		var job importer.Job
		send(t, s, "POST", "/api/v1/imports", a.Key, ct, body).JSON(t, &job)
		for _, req := range []struct{ method, path string }{
			{"GET", fmt.Sprintf("/api/v1/imports/%d", job.ID)},
			{"POST", fmt.Sprintf("/api/v1/imports/%d/dry-run", job.ID)},
			{"POST", fmt.Sprintf("/api/v1/imports/%d/run", job.ID)},
			{"GET", fmt.Sprintf("/api/v1/imports/%d/errors", job.ID)},
		} {
			expectProblem(t, s.Do(t, req.method, req.path, b.Key, nil), 404, "import_not_found")
		}
		var list struct{ Items []importer.Job }
		s.Do(t, "GET", "/api/v1/imports", b.Key, nil).JSON(t, &list)
		if len(list.Items) != 0 {
			t.Fatalf("B lists A's imports: %+v", list.Items)
		}
		// Exports are audited.
		log, err := s.App.Tenant.AuditLog(ctx, a.ID, pageAll())
		if err != nil || !strings.Contains(fmt.Sprint(log.Items), "customers.export") || !strings.Contains(fmt.Sprint(log.Items), "import.upload") {
			t.Errorf("audit log: %+v %v", log.Items, err)
		}
	})
}
