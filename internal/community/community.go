// Package community: customer groups (社群): groups and their members linked to customer profiles, group tags, group codes that open new groups when one fills, group welcome templates, statistics.
//
// The groups and their members are the WeCom connector's (wecom_groups and
// wecom_group_members, kept current from callbacks and syncs); this package
// reads them and adds what Siyu keeps about groups: tags, group codes,
// welcome templates, and statistics computed from the member history.
package community

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/siyu-dev/siyu/internal/connector/wecom"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// Auditor records operator actions (tenant.Service).
type Auditor interface {
	Audit(ctx context.Context, q db.Querier, p tenant.Principal, action, targetKind, targetID, detail string) error
}

// StaffNames names staff by their WeCom userid (staff.Service).
type StaffNames interface {
	NamesByWeComUserID(ctx context.Context, tenantID int64, userIDs []string) (map[string]string, error)
}

// Options configure a Service; zero values mean the defaults.
type Options struct {
	Logger  *slog.Logger
	Auditor Auditor
	Staff   StaffNames
	// Location returns a workspace's time zone, for statistics by day (UTC when nil).
	Location func(ctx context.Context, tenantID int64) (*time.Location, error)
	Now      func() time.Time
}

// Service is the community domain.
type Service struct {
	db    *db.DB
	wecom *wecom.Service
	log   *slog.Logger
	audit Auditor
	staff StaffNames
	loc   func(ctx context.Context, tenantID int64) (*time.Location, error)
	now   func() time.Time
}

// NewService returns the community service. It observes WeCom's processed
// callbacks so that a group code's group list follows the groups WeCom opens.
func NewService(d *db.DB, wc *wecom.Service, o Options) *Service {
	s := &Service{db: d, wecom: wc, log: o.Logger, audit: o.Auditor, staff: o.Staff, loc: o.Location, now: o.Now}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if wc != nil {
		wc.Observe("community", s.observe)
	}
	return s
}

func (s *Service) auditTx(ctx context.Context, q db.Querier, p tenant.Principal, action, kind string, id any, detail string) error {
	if s.audit == nil {
		return nil
	}
	return s.audit.Audit(ctx, q, p, action, kind, fmt.Sprint(id), detail)
}

func (s *Service) location(ctx context.Context, tenantID int64) *time.Location {
	if s.loc == nil {
		return time.UTC
	}
	l, err := s.loc(ctx, tenantID)
	if err != nil || l == nil {
		return time.UTC
	}
	return l
}

func (s *Service) client(ctx context.Context, tenantID int64) (*wecom.Client, error) {
	if s.wecom == nil {
		return nil, errs.E(errs.Conflict, "wecom_not_connected", "connect WeCom first: groups, group codes and welcome templates live in WeCom")
	}
	return s.wecom.Client(ctx, tenantID)
}

// cleanText trims s and checks it has min–max characters and no control characters.
func cleanText(field, s string, minLen, maxLen int) (string, error) {
	s = strings.TrimSpace(s)
	n := utf8.RuneCountInString(s)
	if n < minLen || n > maxLen {
		if minLen > 0 {
			return "", errs.Field(field, "invalid_"+field, "%s must be %d–%d characters", field, minLen, maxLen)
		}
		return "", errs.Field(field, "too_long", "%s may be at most %d characters", field, maxLen)
	}
	if strings.IndexFunc(s, func(r rune) bool { return unicode.IsControl(r) && r != '\n' }) >= 0 {
		return "", errs.Field(field, "invalid_"+field, "%s may not contain control characters", field)
	}
	return s, nil
}

func notFound(what string, id any) error {
	return errs.E(errs.NotFound, what+"_not_found", "%s %v does not exist in this workspace", strings.ReplaceAll(what, "_", " "), id)
}

// tx runs fn in a transaction.
func (s *Service) tx(ctx context.Context, fn func(tx *sql.Tx) error) error { return s.db.Tx(ctx, fn) }
