package message

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// Cap policies: the corp's WeCom setting for how many mass messages one
// customer may receive (客户接收群发消息的上限).
const (
	CapMonth = "month" // as many as the days of the calendar month, per month
	CapWeek  = "week"  // 7 per calendar week (Monday to Sunday)
	CapDay   = "day"   // 1 per day
)

// Settings are a workspace's sending rules.
type Settings struct {
	CapPolicy string `json:"cap_policy" enum:"month,week,day" doc:"The corp's WeCom per-customer cap on mass messages: month (as many as the days of the month), week (7), day (1)."`
	// Quiet hours in the workspace's time zone, "HH:MM"; both empty: none.
	// Scheduled and mass sends falling in them wait until they end; welcome
	// messages are exempt.
	QuietStart string `json:"quiet_start,omitempty" pattern:"^([01][0-9]|2[0-3]):[0-5][0-9]$" doc:"Start of quiet hours, HH:MM (e.g. 21:00)."`
	QuietEnd   string `json:"quiet_end,omitempty" pattern:"^([01][0-9]|2[0-3]):[0-5][0-9]$" doc:"End of quiet hours, HH:MM (e.g. 08:00)."`
	// Pacing is the minimum number of seconds between two deliveries of one
	// sending account, per channel (default: the channel's own).
	Pacing map[string]int `json:"pacing,omitempty" doc:"Channel name → minimum seconds between two deliveries of one staff member."`
}

type period struct {
	start, end time.Time
	limit      int
}

// periodOf is the cap period containing t (in the workspace's zone).
func periodOf(policy string, t time.Time) period {
	y, m, d := t.Date()
	loc := t.Location()
	switch policy {
	case CapDay:
		s := time.Date(y, m, d, 0, 0, 0, 0, loc)
		return period{s, s.AddDate(0, 0, 1), 1}
	case CapWeek:
		wd := (int(t.Weekday()) + 6) % 7 // Monday 0
		s := time.Date(y, m, d-wd, 0, 0, 0, 0, loc)
		return period{s, s.AddDate(0, 0, 7), 7}
	default:
		s := time.Date(y, m, 1, 0, 0, 0, 0, loc)
		e := s.AddDate(0, 1, 0)
		return period{s, e, e.AddDate(0, 0, -1).Day()}
	}
}

func parseHM(v string) (int, error) {
	if v == "" {
		return -1, nil
	}
	t, err := time.Parse("15:04", v)
	if err != nil {
		return 0, err
	}
	return t.Hour()*60 + t.Minute(), nil
}

func formatHM(m int) string {
	if m < 0 {
		return ""
	}
	return fmt.Sprintf("%02d:%02d", m/60, m%60)
}

// Settings returns a workspace's sending rules (defaults when never set).
func (s *Service) Settings(ctx context.Context, tenantID int64) (Settings, error) {
	return s.settings(ctx, s.db, tenantID)
}

func (s *Service) settings(ctx context.Context, q db.Querier, tenantID int64) (Settings, error) {
	var policy, pacing string
	var qs, qe int
	err := q.QueryRowContext(ctx, `SELECT cap_policy, quiet_start, quiet_end, pacing FROM message_settings WHERE tenant_id = $1`, tenantID).
		Scan(&policy, &qs, &qe, &pacing)
	if errors.Is(err, sql.ErrNoRows) {
		return Settings{CapPolicy: CapMonth}, nil
	}
	if err != nil {
		return Settings{}, fmt.Errorf("message: unable to read settings: %w", err)
	}
	out := Settings{CapPolicy: policy, QuietStart: formatHM(qs), QuietEnd: formatHM(qe)}
	if pacing != "" && pacing != "{}" {
		_ = json.Unmarshal([]byte(pacing), &out.Pacing)
	}
	return out, nil
}

// UpdateSettings stores a workspace's sending rules.
func (s *Service) UpdateSettings(ctx context.Context, p tenant.Principal, in Settings) (Settings, error) {
	if err := p.Require(tenant.PermMessagesSend); err != nil {
		return Settings{}, err
	}
	if in.CapPolicy == "" {
		in.CapPolicy = CapMonth
	}
	if in.CapPolicy != CapMonth && in.CapPolicy != CapWeek && in.CapPolicy != CapDay {
		return Settings{}, errs.Field("cap_policy", "invalid_cap_policy", "cap_policy is month, week or day, not %q", in.CapPolicy)
	}
	qs, err := parseHM(in.QuietStart)
	if err != nil {
		return Settings{}, errs.Field("quiet_start", "invalid_time", "quiet_start is HH:MM, not %q", in.QuietStart)
	}
	qe, err := parseHM(in.QuietEnd)
	if err != nil {
		return Settings{}, errs.Field("quiet_end", "invalid_time", "quiet_end is HH:MM, not %q", in.QuietEnd)
	}
	if (qs < 0) != (qe < 0) || (qs >= 0 && qs == qe) {
		return Settings{}, errs.Field("quiet_end", "invalid_quiet_hours", "quiet hours need both a start and a different end, or neither")
	}
	names := make([]string, 0, len(in.Pacing))
	for ch, sec := range in.Pacing {
		if _, ok := s.Channel(ch); !ok {
			return Settings{}, errs.Field("pacing", "unknown_channel", "no channel %q", ch)
		}
		if sec < 0 || sec > 86400 {
			return Settings{}, errs.Field("pacing", "invalid_pacing", "pacing for %s is between 0 and 86400 seconds", ch)
		}
		names = append(names, ch)
	}
	sort.Strings(names)
	pacing, _ := json.Marshal(in.Pacing)
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO message_settings (tenant_id, cap_policy, quiet_start, quiet_end, pacing, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id) DO UPDATE SET cap_policy = excluded.cap_policy,
			quiet_start = excluded.quiet_start, quiet_end = excluded.quiet_end, pacing = excluded.pacing, updated_at = excluded.updated_at`,
			p.TenantID, in.CapPolicy, qs, qe, string(pacing), db.Millis(s.now())); err != nil {
			return fmt.Errorf("message: unable to store settings: %w", err)
		}
		return s.audit(ctx, tx, p, "message.settings", "message_settings", "", fmt.Sprintf("cap %s, quiet %s–%s, pacing %s",
			in.CapPolicy, in.QuietStart, in.QuietEnd, strings.Join(names, ",")))
	})
	if err != nil {
		return Settings{}, err
	}
	return s.Settings(ctx, p.TenantID)
}

func (s *Service) audit(ctx context.Context, q db.Querier, p tenant.Principal, action, kind, id, detail string) error {
	if s.ws == nil {
		return nil
	}
	return s.ws.Audit(ctx, q, p, action, kind, id, detail)
}

// quietUntil returns the end of the quiet hours t falls in, or t when it is
// outside them (loc is the workspace's zone).
func quietUntil(set Settings, t time.Time, loc *time.Location) time.Time {
	qs, _ := parseHM(set.QuietStart)
	qe, _ := parseHM(set.QuietEnd)
	if qs < 0 || qe < 0 {
		return t
	}
	lt := t.In(loc)
	m := lt.Hour()*60 + lt.Minute()
	y, mo, d := lt.Date()
	endToday := time.Date(y, mo, d, qe/60, qe%60, 0, 0, loc)
	if qs < qe { // e.g. 12:00–14:00
		if m >= qs && m < qe {
			return endToday
		}
		return t
	}
	// Across midnight, e.g. 21:00–08:00.
	switch {
	case m >= qs:
		return endToday.AddDate(0, 0, 1)
	case m < qe:
		return endToday
	}
	return t
}

// pacing is the gap between two deliveries of one account on a channel.
func pacingFor(set Settings, channel string, r Rules) time.Duration {
	if sec, ok := set.Pacing[channel]; ok {
		return time.Duration(sec) * time.Second
	}
	return r.Pacing
}
