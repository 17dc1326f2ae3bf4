package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestImportCommand(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "s.db")
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"workspace", "add", "--db", dbPath, "--slug", "cli-brand", "--name", "CLI", "--owner", "o@cli.test"}, &out, &errb); code != 0 {
		t.Fatalf("workspace add: exit %d: %s", code, errb.String())
	}
	file := filepath.Join(dir, "会员.csv")
	csv := "姓名,手机,等级,备注\n张伟,13800138000,金卡,x\n王芳,139 0013 9000,银卡,y\n李娜,12345,普通,z\n"
	if err := os.WriteFile(file, []byte(csv), 0o600); err != nil {
		t.Fatal(err)
	}
	base := []string{"import", "--db", dbPath, "--workspace", "cli-brand", "--file", file, "--map", "备注="}

	// Dry run: the bad phone on row 4 is reported, nothing written, exit 1.
	out.Reset()
	errb.Reset()
	code := run(context.Background(), append(base, "--dry-run"), &out, &errb)
	if code != 1 || !strings.Contains(out.String(), "dry run: 3 rows, 2 valid, 1 with errors") || !strings.Contains(out.String(), "row 4 [手机] invalid_phone") ||
		!strings.Contains(out.String(), "备注") || !strings.Contains(out.String(), "(ignored)") || !strings.Contains(out.String(), "trait:等级") {
		t.Fatalf("dry run: exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	// The run imports the two good rows and says which failed.
	out.Reset()
	errb.Reset()
	code = run(context.Background(), base, &out, &errb)
	if code != 1 || !strings.Contains(out.String(), "3/3 rows (100%), 2 imported, 1 failed") || !strings.Contains(errb.String(), "1 rows failed") {
		t.Fatalf("run: exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	// Again: a warning that the file was imported, and nothing new.
	out.Reset()
	errb.Reset()
	run(context.Background(), base, &out, &errb)
	if !strings.Contains(out.String(), "warning: this file was already imported") {
		t.Fatalf("re-run:\n%s", out.String())
	}
	// Mistakes in the command line are explained.
	errb.Reset()
	if code := run(context.Background(), append(base, "--map", "没有=name"), &out, &errb); code != 1 || !strings.Contains(errb.String(), `no column "没有"`) {
		t.Fatalf("bad --map: exit %d %s", code, errb.String())
	}
	errb.Reset()
	if code := run(context.Background(), []string{"import", "--db", dbPath, "--workspace", "nope", "--file", file}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "nope") {
		t.Fatalf("unknown workspace: exit %d %s", code, errb.String())
	}
	out.Reset()
	if code := run(context.Background(), []string{"help", "import"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "-dry-run") {
		t.Fatalf("help import: %s", out.String())
	}
}
