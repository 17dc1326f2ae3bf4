package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"github.com/siyu-dev/siyu/internal/app"
	"github.com/siyu-dev/siyu/internal/event"
)

// generateEvents sends the demo brand's mini-program behaviour through the
// same ingest as /v1/batch: browsing, product views, carts and coupons over
// the last 90 days for the active part of the membership. Some visitors browse
// anonymously first and sign in later, so One ID merges show on their
// profiles. The processor resolves the events in the background.
func generateEvents(ctx context.Context, a *app.App, writeKey string, customers int, progress io.Writer) error {
	r := rand.New(rand.NewPCG(2026, 13))
	items := menu()
	now := time.Now().UTC()
	var batch []map[string]any
	sent := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		body, err := json.Marshal(map[string]any{"batch": batch})
		if err != nil {
			return err
		}
		res, err := a.Events.Ingest(ctx, event.Request{Endpoint: event.EndpointBatch, WriteKey: writeKey, Body: body})
		if err != nil {
			return fmt.Errorf("demo: ingest: %w", err)
		}
		if len(res.Rejected) > 0 {
			return fmt.Errorf("demo: ingest rejected %d messages: %s", len(res.Rejected), res.Rejected[0].Reason)
		}
		sent += len(batch)
		batch = batch[:0]
		return nil
	}
	add := func(m map[string]any) error {
		batch = append(batch, m)
		if len(batch) == 100 {
			return flush()
		}
		return nil
	}
	for i := range customers {
		if r.IntN(10) >= 3 { // about 30% of members were active lately
			continue
		}
		user := fmt.Sprintf("m%07d", 1000000+i)
		id := map[string]any{"userId": user}
		start := now.Add(-time.Duration(r.Int64N(int64(90 * 24 * time.Hour))))
		if r.IntN(15) == 0 {
			// An anonymous visit first; signing in later joins the two.
			anon := fmt.Sprintf("anon-%d-%d", i, r.IntN(1000))
			id = map[string]any{"anonymousId": anon}
			if err := add(msg("page", id, start, map[string]any{"name": "首页"})); err != nil {
				return err
			}
			if err := add(msg("identify", map[string]any{"anonymousId": anon, "userId": user}, start.Add(2*time.Minute), nil)); err != nil {
				return err
			}
			id = map[string]any{"userId": user}
			start = start.Add(3 * time.Minute)
		}
		fav := items[r.IntN(8)]
		at := start
		for range 3 + r.IntN(10) {
			at = at.Add(time.Duration(1+r.IntN(4000)) * time.Minute)
			if at.After(now) {
				break
			}
			p := fav
			if r.IntN(3) == 0 {
				p = items[r.IntN(len(items))]
			}
			var m map[string]any
			switch r.IntN(6) {
			case 0, 1:
				m = msg("page", id, at, map[string]any{"name": "商品详情", "properties": map[string]any{"sku": p.sku, "category": p.category}})
			case 2, 3:
				m = msg("track", id, at, map[string]any{"event": "view_product", "properties": map[string]any{"sku": p.sku, "category": p.category, "price": float64(p.priceFen) / 100}})
			case 4:
				m = msg("track", id, at, map[string]any{"event": "add_to_cart", "properties": map[string]any{"sku": p.sku, "category": p.category, "quantity": 1}})
			default:
				m = msg("track", id, at, map[string]any{"event": "coupon_claimed", "properties": map[string]any{"coupon": "满30减5", "campaign": "会员日"}})
			}
			if err := add(m); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	fmt.Fprintf(progress, "demo: %d mini-program events ingested; the processor resolves them in the background\n", sent)
	return nil
}

// msg builds one Segment message with a stable messageId, so that re-running
// the generation stores nothing twice.
func msg(typ string, ids map[string]any, at time.Time, fields map[string]any) map[string]any {
	m := map[string]any{"type": typ, "timestamp": at.Format(time.RFC3339Nano), "context": map[string]any{"app": map[string]any{"name": "茶语时光小程序"}}}
	for k, v := range ids {
		m[k] = v
	}
	for k, v := range fields {
		m[k] = v
	}
	key := fmt.Sprint(typ, ids, at.UnixNano(), fields["event"], fields["name"])
	m["messageId"] = fmt.Sprintf("demo-%x", hash(key))
	return m
}

func hash(s string) uint64 {
	var h uint64 = 14695981039346656037
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}
