package event_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/siyu-dev/siyu/internal/api"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/db/dbtest"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// BenchmarkIngest drives POST /v1/batch with 100-event batches of realistic
// events (track with properties, page, identify with traits, full SDK
// context) from concurrent clients over loopback, and reports sustained
// events/s and the p50/p99 latency of a batch (request to committed reply).
// The server is the real handler stack on the real database, durable as
// configured (SQLite synchronous=FULL); the processor is not running, so
// what is measured is ingest alone. Clients: SIYU_BENCH_CLIENTS (default 16).
//
//	go test -run '^$' -bench Ingest -benchtime 3000x ./internal/event/
func BenchmarkIngest(b *testing.B) {
	for _, engine := range dbtest.Engines() {
		b.Run(string(engine), func(b *testing.B) { benchIngest(b, engine) })
	}
}

const benchBatch = 100

func benchIngest(b *testing.B, engine db.Dialect) {
	d := dbtest.Open(b, engine)
	svc, tid, key := newService(b, d)
	mux := http.NewServeMux()
	api.Register(mux, api.Deps{Tenant: tenant.NewService(d, tenant.Options{}), Events: svc, Version: "bench"})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	clients := 16
	if v, err := strconv.Atoi(os.Getenv("SIYU_BENCH_CLIENTS")); err == nil && v > 0 {
		clients = v
	}
	tmpl := benchTemplate()
	tr := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}

	lat := make([]time.Duration, b.N)
	var next atomic.Int64
	var wg sync.WaitGroup
	b.SetBytes(int64(len(tmpl.body)))
	b.ResetTimer()
	cpu0 := cpuTime()
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				body := tmpl.make(i)
				req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/batch", bytes.NewReader(body))
				req.SetBasicAuth(key, "")
				req.Header.Set("Content-Type", "application/json")
				t0 := time.Now()
				res, err := hc.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				rb, _ := io.ReadAll(res.Body)
				res.Body.Close()
				lat[i] = time.Since(t0)
				if res.StatusCode != http.StatusOK || !bytes.Equal(rb, []byte("{\"success\":true}\n")) {
					b.Errorf("batch %d: %d %s", i, res.StatusCode, rb)
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	b.StopTimer()

	slices.Sort(lat)
	b.ReportMetric(float64(b.N*benchBatch)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(lat[b.N/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[min(b.N-1, b.N*99/100)].Microseconds())/1000, "p99-ms")
	// CPU of the whole process (server and load generator) per event: a
	// figure that other load on the machine does not distort.
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N*benchBatch), "cpu-µs/event")
	b.ReportMetric(0, "ns/op")
	var n int
	if err := d.QueryRow(`SELECT count(*) FROM events WHERE tenant_id = $1`, tid).Scan(&n); err != nil {
		b.Fatal(err)
	}
	if n != b.N*benchBatch {
		b.Fatalf("%d events stored, want %d", n, b.N*benchBatch)
	}
}

// batchTemplate is a batch body whose messageIds carry a fixed-width slot
// that make fills with the batch number, so every batch is new to the
// server but costs the load generator only a copy.
type batchTemplate struct {
	body  []byte
	slots []int // offsets of the slots
}

const slotWidth = 10

func (t batchTemplate) make(i int64) []byte {
	b := slices.Clone(t.body)
	n := fmt.Appendf(nil, "%0*d", slotWidth, i)
	for _, off := range t.slots {
		copy(b[off:], n)
	}
	return b
}

func benchTemplate() batchTemplate {
	rng := rand.New(rand.NewPCG(1, 2))
	now := time.Now().UTC()
	ctx := func(anon string) map[string]any {
		return map[string]any{
			"library":   map[string]any{"name": "analytics-miniprogram", "version": "3.2.1"},
			"app":       map[string]any{"name": "品牌商城", "version": "5.12.0", "build": "5120"},
			"device":    map[string]any{"model": "iPhone15,2", "manufacturer": "Apple", "type": "ios"},
			"os":        map[string]any{"name": "iOS", "version": "17.4"},
			"locale":    "zh-CN",
			"timezone":  "Asia/Shanghai",
			"ip":        fmt.Sprintf("10.%d.%d.%d", rng.IntN(255), rng.IntN(255), rng.IntN(255)),
			"userAgent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) MicroMessenger/8.0.47",
			"campaign":  map[string]any{"source": "wecom", "medium": "group", "name": "618-presale"},
		}
	}
	skus := []string{"SKU-1001", "SKU-1002", "SKU-2040", "SKU-3300", "SKU-5120"}
	var msgs []map[string]any
	for i := range benchBatch {
		anon := fmt.Sprintf("anon-%08x", rng.Uint32())
		user := fmt.Sprintf("u-%d", rng.IntN(1_000_000))
		m := map[string]any{
			"messageId":   fmt.Sprintf("%s-%03d", bytes.Repeat([]byte("#"), slotWidth), i),
			"anonymousId": anon,
			"timestamp":   now.Add(-time.Duration(benchBatch-i) * time.Second).Format(time.RFC3339Nano),
			"context":     ctx(anon),
		}
		switch {
		case i%10 == 0:
			m["type"], m["userId"] = "identify", user
			m["traits"] = map[string]any{"name": "王芳", "phone": fmt.Sprintf("138%08d", rng.IntN(100_000_000)), "email": user + "@example.com",
				"gender": "female", "city": "上海", "vip_level": rng.IntN(5), "birthday": "1992-06-18"}
		case i%10 == 1:
			m["type"], m["name"] = "page", "商品详情"
			m["properties"] = map[string]any{"path": "/pages/product/detail", "title": "商品详情", "referrer": "/pages/index/index", "sku": skus[i%len(skus)]}
		case i%10 == 9:
			m["type"], m["event"], m["userId"] = "track", "Order Completed", user
			m["properties"] = map[string]any{"order_id": fmt.Sprintf("T%d", rng.Int64()), "total": 299.00, "revenue": 269.10, "discount": 29.9,
				"currency": "CNY", "coupon": "618-30", "products": []any{
					map[string]any{"sku": skus[0], "name": "保湿精华 30ml", "price": 199.0, "quantity": 1, "category": "护肤"},
					map[string]any{"sku": skus[3], "name": "洁面乳 100g", "price": 100.0, "quantity": 1, "category": "护肤"},
				}}
		default:
			m["type"], m["event"] = "track", "Product Viewed"
			m["properties"] = map[string]any{"sku": skus[i%len(skus)], "name": "保湿精华 30ml", "category": "护肤", "price": 199.0,
				"currency": "CNY", "position": rng.IntN(20), "list_id": "home-recommend"}
		}
		msgs = append(msgs, m)
	}
	body, err := json.Marshal(map[string]any{"batch": msgs, "sentAt": now.Format(time.RFC3339Nano)})
	if err != nil {
		panic(err)
	}
	t := batchTemplate{body: body}
	slot := bytes.Repeat([]byte("#"), slotWidth)
	for off := 0; ; {
		j := bytes.Index(body[off:], slot)
		if j < 0 {
			break
		}
		t.slots = append(t.slots, off+j)
		off += j + slotWidth
	}
	if len(t.slots) != benchBatch {
		panic(fmt.Sprintf("bench: %d slots", len(t.slots)))
	}
	return t
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
