// Package acquire: channel codes (渠道活码): codes per source through WeCom add_contact_way, staff rotation with weights, schedules, daily caps and backups, tags, remarks and welcome messages on each add, store codes, attribution and statistics.
package acquire

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/siyu-dev/siyu/internal/connector/wecom"
	"github.com/siyu-dev/siyu/internal/customer"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/message"
	"github.com/siyu-dev/siyu/internal/staff"
	"github.com/siyu-dev/siyu/internal/tag"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// GroupCodes gives the QR image of a group code (社群活码) of the community
// area, added to a welcome message as "invite into a group". Optional.
type GroupCodes interface {
	JoinWayQR(ctx context.Context, tenantID, groupCodeID int64) (qrURL string, err error)
}

// Options are the Service's dependencies. WeCom, Tags, Tenant, Staff and
// Customers are required; Messages (the outbox) and Groups may be nil.
type Options struct {
	DB        *db.DB
	WeCom     *wecom.Service
	Tags      *tag.Service
	Tenant    *tenant.Service
	Staff     *staff.Service
	Customers *customer.Service
	Messages  *message.Service
	Groups    GroupCodes
	Logger    *slog.Logger
	// HTTPClient fetches QR images; default a client with a 15 s timeout.
	HTTPClient *http.Client
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Service is the acquire domain.
type Service struct {
	db     *db.DB
	wecom  *wecom.Service
	tags   *tag.Service
	tenant *tenant.Service
	staff  *staff.Service
	cust   *customer.Service
	msgs   *message.Service
	groups GroupCodes
	log    *slog.Logger
	http   *http.Client
	now    func() time.Time
}

// NewService builds the service. Register Observe with the WeCom
// connector (wecom.Service.Observe) so that adds through codes are handled.
func NewService(o Options) *Service {
	s := &Service{db: o.DB, wecom: o.WeCom, tags: o.Tags, tenant: o.Tenant, staff: o.Staff, cust: o.Customers,
		msgs: o.Messages, groups: o.Groups, log: o.Logger, http: o.HTTPClient, now: o.Now}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.http == nil {
		s.http = &http.Client{Timeout: 15 * time.Second}
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

// Run keeps every code's WeCom member list in line with its policy until ctx
// ends: schedule boundaries, caps reached and a new day change who should
// get the next add, and a failed update_contact_way is retried.
func (s *Service) Run(ctx context.Context, interval time.Duration) {
	// The first pass waits an interval too: adds are handled as they come,
	// and nothing is due at start that cannot wait that long.
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := s.Rebalance(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("acquire: rebalancing channel codes failed", "err", err)
		}
	}
}

// ErrNoGroupCodes is returned by a GroupCodes that has none.
var ErrNoGroupCodes = errors.New("acquire: group codes are not available")
