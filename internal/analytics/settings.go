package analytics

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// How an R, F or M score is judged high or low for the RFM class.
const (
	ClassByAverage      = "average"       // a score above the workspace's mean score
	ClassByThreshold    = "threshold"     // a score above a fixed score
	ClassByValueAverage = "value_average" // a value (days, orders, fen) better than the workspace's mean value
)

// ScoreSettings are a workspace's thresholds for the computed attributes. Every
// field is documented in docs/scores.md; Defaults suit a tea or retail brand.
type ScoreSettings struct {
	// RecomputeHour is the hour (0–23, workspace time) of the daily full
	// recompute.
	RecomputeHour int               `json:"recompute_hour" minimum:"0" maximum:"23" doc:"Hour of the day (workspace time zone) of the daily full recompute."`
	RFM           RFMSettings       `json:"rfm"`
	Lifecycle     LifecycleSettings `json:"lifecycle"`
	FanTier       FanTierSettings   `json:"fan_tier"`
}

// RFMSettings decide the RFM class.
type RFMSettings struct {
	ClassBy    string          `json:"class_by" enum:"average,threshold,value_average" doc:"average: a score above the workspace's mean score of that metric is high; threshold: a score above thresholds is high; value_average: fewer days since the last order, more orders or more spend than the workspace's mean is high."`
	Thresholds ScoreThresholds `json:"thresholds" doc:"Used when class_by is threshold: a score above it is high (3: scores 4 and 5 are high)."`
}

// ScoreThresholds hold one score per metric.
type ScoreThresholds struct {
	R int `json:"r" minimum:"1" maximum:"4"`
	F int `json:"f" minimum:"1" maximum:"4"`
	M int `json:"m" minimum:"1" maximum:"4"`
}

// LifecycleSettings decide the lifecycle stage.
type LifecycleSettings struct {
	GrowthMinOrders        int `json:"growth_min_orders" minimum:"2" maximum:"1000" doc:"成长期 from this many kept orders."`
	MatureMinOrders        int `json:"mature_min_orders" minimum:"2" maximum:"1000" doc:"成熟期 needs at least this many kept orders."`
	MatureMinScore         int `json:"mature_min_score" minimum:"1" maximum:"5" doc:"成熟期 needs F and M scores at least this."`
	MatureRecentDays       int `json:"mature_recent_days" minimum:"1" maximum:"3650" doc:"成熟期 needs the last order at most this many days ago."`
	ExtensionMinCategories int `json:"extension_min_categories" minimum:"0" maximum:"1000" doc:"延展期: a mature customer who bought from at least this many product categories (0: not used)."`
	ExtensionMinTenureDays int `json:"extension_min_tenure_days" minimum:"0" maximum:"3650" doc:"延展期: a mature customer whose first order is at least this many days old (0: not used)."`
	DeclineDays            int `json:"decline_days" minimum:"1" maximum:"3650" doc:"衰退期 after this many days with no order and no activity."`
	LapsedBuyerDays        int `json:"lapsed_buyer_days" minimum:"0" maximum:"3650" doc:"衰退期 also for a buyer whose last order is this many days old, active or not (0: not used)."`
}

// FanTierSettings decide the fan tier.
type FanTierSettings struct {
	DevotedMinOrders      int      `json:"devoted_min_orders" minimum:"1" maximum:"1000" doc:"真爱粉 from this many kept orders."`
	DevotedMinEvents30    int      `json:"devoted_min_events_30d" minimum:"0" maximum:"100000" doc:"真爱粉 from this many interactions in the last 30 days (0: not used)."`
	FavourableMinOrders   int      `json:"favourable_min_orders" minimum:"1" maximum:"1000" doc:"好感粉 from this many kept orders."`
	FavourableMinEvents90 int      `json:"favourable_min_events_90d" minimum:"0" maximum:"100000" doc:"好感粉 from this many interactions in the last 90 days (0: not used)."`
	CoolOffDays           int      `json:"cool_off_days" minimum:"0" maximum:"3650" doc:"路人粉 again after this many days with no order and no activity (0: never)."`
	InteractionEvents     []string `json:"interaction_events" maxItems:"50" nullable:"false" doc:"Event names that count as interactions; empty: every track, page and screen event."`
}

// Defaults returns the settings a workspace starts with.
func Defaults() ScoreSettings {
	return ScoreSettings{
		RecomputeHour: 4,
		RFM:           RFMSettings{ClassBy: ClassByAverage, Thresholds: ScoreThresholds{R: 3, F: 3, M: 3}},
		Lifecycle: LifecycleSettings{
			GrowthMinOrders: 2, MatureMinOrders: 3, MatureMinScore: 4, MatureRecentDays: 60,
			ExtensionMinCategories: 3, ExtensionMinTenureDays: 365,
			DeclineDays: 90, LapsedBuyerDays: 180,
		},
		FanTier: FanTierSettings{
			DevotedMinOrders: 3, DevotedMinEvents30: 10,
			FavourableMinOrders: 1, FavourableMinEvents90: 3,
			CoolOffDays: 180, InteractionEvents: []string{},
		},
	}
}

// Validate checks every field, reporting each bad one by its JSON path.
func (s ScoreSettings) Validate() error {
	var bad []errs.FieldError
	check := func(ok bool, loc, format string, args ...any) {
		if !ok {
			bad = append(bad, errs.FieldError{Location: loc, Message: fmt.Sprintf(format, args...)})
		}
	}
	in := func(v, lo, hi int, loc string) {
		check(v >= lo && v <= hi, loc, "%s must be between %d and %d", loc, lo, hi)
	}
	in(s.RecomputeHour, 0, 23, "recompute_hour")
	check(s.RFM.ClassBy == ClassByAverage || s.RFM.ClassBy == ClassByThreshold || s.RFM.ClassBy == ClassByValueAverage,
		"rfm.class_by", "rfm.class_by must be average, threshold or value_average")
	in(s.RFM.Thresholds.R, 1, 4, "rfm.thresholds.r")
	in(s.RFM.Thresholds.F, 1, 4, "rfm.thresholds.f")
	in(s.RFM.Thresholds.M, 1, 4, "rfm.thresholds.m")
	l := s.Lifecycle
	in(l.GrowthMinOrders, 2, 1000, "lifecycle.growth_min_orders")
	in(l.MatureMinOrders, 2, 1000, "lifecycle.mature_min_orders")
	in(l.MatureMinScore, 1, 5, "lifecycle.mature_min_score")
	check(l.MatureMinOrders >= l.GrowthMinOrders, "lifecycle.mature_min_orders",
		"lifecycle.mature_min_orders must be at least lifecycle.growth_min_orders")
	in(l.MatureRecentDays, 1, 3650, "lifecycle.mature_recent_days")
	in(l.ExtensionMinCategories, 0, 1000, "lifecycle.extension_min_categories")
	in(l.ExtensionMinTenureDays, 0, 3650, "lifecycle.extension_min_tenure_days")
	in(l.DeclineDays, 1, 3650, "lifecycle.decline_days")
	in(l.LapsedBuyerDays, 0, 3650, "lifecycle.lapsed_buyer_days")
	check(l.MatureRecentDays < l.DeclineDays, "lifecycle.mature_recent_days",
		"lifecycle.mature_recent_days must be less than lifecycle.decline_days (a mature customer cannot be idle that long)")
	check(l.LapsedBuyerDays == 0 || l.MatureRecentDays < l.LapsedBuyerDays, "lifecycle.lapsed_buyer_days",
		"lifecycle.lapsed_buyer_days must be 0 or more than lifecycle.mature_recent_days")
	f := s.FanTier
	in(f.DevotedMinOrders, 1, 1000, "fan_tier.devoted_min_orders")
	in(f.DevotedMinEvents30, 0, 100000, "fan_tier.devoted_min_events_30d")
	in(f.FavourableMinOrders, 1, 1000, "fan_tier.favourable_min_orders")
	in(f.FavourableMinEvents90, 0, 100000, "fan_tier.favourable_min_events_90d")
	in(f.CoolOffDays, 0, 3650, "fan_tier.cool_off_days")
	check(f.DevotedMinOrders >= f.FavourableMinOrders, "fan_tier.devoted_min_orders",
		"fan_tier.devoted_min_orders must be at least fan_tier.favourable_min_orders")
	check(f.DevotedMinEvents30 == 0 || f.FavourableMinEvents90 == 0 || f.DevotedMinEvents30 >= f.FavourableMinEvents90,
		"fan_tier.devoted_min_events_30d", "fan_tier.devoted_min_events_30d must be 0 or at least fan_tier.favourable_min_events_90d")
	check(len(f.InteractionEvents) <= 50, "fan_tier.interaction_events", "at most 50 event names")
	seen := map[string]bool{}
	for i, n := range f.InteractionEvents {
		loc := fmt.Sprintf("fan_tier.interaction_events[%d]", i)
		check(strings.TrimSpace(n) == n && n != "" && utf8.RuneCountInString(n) <= 255 && utf8.ValidString(n), loc,
			"an event name must be 1–255 characters without surrounding spaces")
		check(!seen[n], loc, "%q is listed twice", n)
		seen[n] = true
	}
	if len(bad) > 0 {
		return &errs.Error{Kind: errs.Invalid, Code: "invalid_score_settings", Message: "the score settings are not valid: " + bad[0].Message, Fields: bad}
	}
	return nil
}

// Settings returns a workspace's settings: what it saved, over the defaults
// (so a field added later takes its default).
func (s *Service) Settings(ctx context.Context, tenantID int64) (ScoreSettings, error) {
	return s.settings(ctx, s.db, tenantID)
}

func (s *Service) settings(ctx context.Context, q db.Querier, tenantID int64) (ScoreSettings, error) {
	set := Defaults()
	var doc string
	err := q.QueryRowContext(ctx, `SELECT settings FROM score_settings WHERE tenant_id = $1`, tenantID).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return set, nil
	}
	if err != nil {
		return ScoreSettings{}, fmt.Errorf("analytics: unable to read score settings: %w", err)
	}
	if err := json.Unmarshal([]byte(doc), &set); err != nil {
		return ScoreSettings{}, fmt.Errorf("analytics: damaged score settings of workspace %d: %w", tenantID, err)
	}
	if set.FanTier.InteractionEvents == nil {
		set.FanTier.InteractionEvents = []string{}
	}
	return set, nil
}

// SetSettings validates and saves a workspace's settings and asks for a full
// recompute, so every customer is classified by them soon.
func (s *Service) SetSettings(ctx context.Context, p tenant.Principal, set ScoreSettings) (ScoreSettings, error) {
	if set.FanTier.InteractionEvents == nil {
		set.FanTier.InteractionEvents = []string{}
	}
	if err := set.Validate(); err != nil {
		return ScoreSettings{}, err
	}
	doc, err := json.Marshal(set)
	if err != nil {
		return ScoreSettings{}, fmt.Errorf("analytics: unable to encode score settings: %w", err)
	}
	now := db.Millis(s.now())
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO score_settings (tenant_id, settings, updated_at) VALUES ($1, $2, $3)
			 ON CONFLICT (tenant_id) DO UPDATE SET settings = excluded.settings, updated_at = excluded.updated_at`,
			p.TenantID, string(doc), now); err != nil {
			return fmt.Errorf("analytics: unable to save score settings: %w", err)
		}
		if err := s.request(ctx, tx, p.TenantID); err != nil {
			return err
		}
		if s.audit != nil {
			return s.audit.Audit(ctx, tx, p, "score_settings.update", "score_settings", fmt.Sprint(p.TenantID), string(doc))
		}
		return nil
	})
	if err != nil {
		return ScoreSettings{}, err
	}
	s.wakeUp()
	return set, nil
}
