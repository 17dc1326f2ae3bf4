package community

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/siyu-dev/siyu/internal/connector/wecom"
	"github.com/siyu-dev/siyu/internal/db"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/page"
	"github.com/siyu-dev/siyu/internal/tenant"
)

// WelcomeAttachment is the one attachment of a group welcome template.
type WelcomeAttachment struct {
	Kind string `json:"kind" enum:"image,link,miniprogram"`
	// image: a picture URL (or an uploaded media_id)
	PicURL  string `json:"pic_url,omitempty"`
	MediaID string `json:"media_id,omitempty"`
	// link
	Title string `json:"title,omitempty"`
	URL   string `json:"url,omitempty"`
	Desc  string `json:"desc,omitempty"`
	// miniprogram (Title too)
	AppID      string `json:"appid,omitempty"`
	Page       string `json:"page,omitempty"`
	PicMediaID string `json:"pic_media_id,omitempty"`
}

// GroupWelcome is a group welcome template (入群欢迎语素材): what WeCom
// sends in a group when a customer joins. %NICKNAME% in the text becomes the
// customer's name.
type GroupWelcome struct {
	ID         int64              `json:"id"`
	Name       string             `json:"name"`
	TemplateID string             `json:"template_id" doc:"WeCom's template_id."`
	Text       string             `json:"text"`
	Attachment *WelcomeAttachment `json:"attachment,omitempty"`
	Notify     bool               `json:"notify" doc:"WeCom told the staff about the new template."`
	Status     string             `json:"status" enum:"pending,active"`
	CreatedAt  time.Time          `json:"created_at"`
	UpdatedAt  time.Time          `json:"updated_at"`
}

// GroupWelcomeInput creates or changes a template.
type GroupWelcomeInput struct {
	Name       string             `json:"name" minLength:"1" maxLength:"60"`
	Text       string             `json:"text,omitempty" doc:"Up to 4,000 bytes; %NICKNAME% becomes the customer's name."`
	Attachment *WelcomeAttachment `json:"attachment,omitempty"`
	Notify     *bool              `json:"notify,omitempty" doc:"Tell the staff in WeCom (create only; default true)."`
	// IdempotencyKey makes a retried create return the first one's template.
	IdempotencyKey string `json:"idempotency_key,omitempty" maxLength:"100"`
}

func cleanWelcome(in GroupWelcomeInput) (GroupWelcomeInput, error) {
	var err error
	if in.Name, err = cleanText("name", in.Name, 1, 60); err != nil {
		return in, err
	}
	in.Text = strings.TrimSpace(in.Text)
	if len(in.Text) > wecom.MaxGroupWelcomeText {
		return in, errs.Field("text", "text_too_long", "the text is at most %d bytes (WeCom's limit), not %d", wecom.MaxGroupWelcomeText, len(in.Text))
	}
	if a := in.Attachment; a != nil {
		switch a.Kind {
		case "image":
			if a.PicURL == "" && a.MediaID == "" {
				return in, errs.Field("attachment.pic_url", "required", "an image needs a picture URL")
			}
		case "link":
			if strings.TrimSpace(a.Title) == "" || !strings.HasPrefix(a.URL, "http") {
				return in, errs.Field("attachment.url", "invalid_link", "a link needs a title and an http(s) URL")
			}
		case "miniprogram":
			if a.AppID == "" || a.Page == "" || a.Title == "" || a.PicMediaID == "" {
				return in, errs.Field("attachment", "invalid_miniprogram", "a mini-program card needs a title, appid, page and cover media_id")
			}
		case "":
			in.Attachment = nil
		default:
			return in, errs.Field("attachment.kind", "invalid_attachment", "the attachment is an image, link or miniprogram, not %q", a.Kind)
		}
	}
	if in.Text == "" && in.Attachment == nil {
		return in, errs.Field("text", "empty_template", "a group welcome template needs text or an attachment")
	}
	if len(in.IdempotencyKey) > 100 {
		return in, errs.Field("idempotency_key", "too_long", "the idempotency key is at most 100 characters")
	}
	return in, nil
}

func (in GroupWelcomeInput) wecom() wecom.GroupWelcomeTemplate {
	var t wecom.GroupWelcomeTemplate
	if in.Text != "" {
		t.Text = &wecom.Text{Content: in.Text}
	}
	if a := in.Attachment; a != nil {
		switch a.Kind {
		case "image":
			t.Image = &wecom.Image{MediaID: a.MediaID, PicURL: a.PicURL}
		case "link":
			t.Link = &wecom.Link{Title: a.Title, PicURL: a.PicURL, Desc: a.Desc, URL: a.URL}
		case "miniprogram":
			t.MiniProgram = &wecom.MiniProgram{Title: a.Title, PicMediaID: a.PicMediaID, AppID: a.AppID, Page: a.Page}
		}
	}
	return t
}

const welcomeCols = `id, name, template_id, text, attachment, notify, status, created_at, updated_at`

func scanWelcome(sc interface{ Scan(...any) error }) (GroupWelcome, error) {
	var t GroupWelcome
	var att string
	var notify int
	var created, updated int64
	if err := sc.Scan(&t.ID, &t.Name, &t.TemplateID, &t.Text, &att, &notify, &t.Status, &created, &updated); err != nil {
		return GroupWelcome{}, err
	}
	if att != "" {
		var a WelcomeAttachment
		if json.Unmarshal([]byte(att), &a) == nil {
			t.Attachment = &a
		}
	}
	t.Notify = notify == 1
	t.CreatedAt, t.UpdatedAt = db.FromMillis(created), db.FromMillis(updated)
	return t, nil
}

func attachmentJSON(a *WelcomeAttachment) string {
	if a == nil {
		return ""
	}
	b, _ := json.Marshal(a)
	return string(b)
}

// WelcomeTemplate returns a template.
func (s *Service) WelcomeTemplate(ctx context.Context, tenantID, id int64) (GroupWelcome, error) {
	t, err := scanWelcome(s.db.QueryRowContext(ctx, `SELECT `+welcomeCols+` FROM community_welcome_templates WHERE tenant_id = $1 AND id = $2 AND status <> 'deleted'`,
		tenantID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return GroupWelcome{}, errs.E(errs.NotFound, "welcome_template_not_found", "group welcome template %d does not exist in this workspace", id)
	}
	if err != nil {
		return GroupWelcome{}, fmt.Errorf("community: unable to read welcome template %d: %w", id, err)
	}
	return t, nil
}

// WelcomeTemplates lists the templates, newest first.
func (s *Service) WelcomeTemplates(ctx context.Context, tenantID int64, r page.Request) (page.Page[GroupWelcome], error) {
	after, ok, err := page.AfterID(r)
	if err != nil {
		return page.Page[GroupWelcome]{}, err
	}
	q := `SELECT ` + welcomeCols + ` FROM community_welcome_templates WHERE tenant_id = $1 AND status <> 'deleted'`
	args := []any{tenantID}
	if ok {
		q += ` AND id < $2`
		args = append(args, after)
	}
	rows, err := s.db.QueryContext(ctx, q+fmt.Sprintf(` ORDER BY id DESC LIMIT %d`, r.Size()+1), args...)
	if err != nil {
		return page.Page[GroupWelcome]{}, fmt.Errorf("community: unable to list welcome templates: %w", err)
	}
	defer rows.Close()
	var out []GroupWelcome
	for rows.Next() {
		t, err := scanWelcome(rows)
		if err != nil {
			return page.Page[GroupWelcome]{}, fmt.Errorf("community: unable to read a welcome template: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return page.Page[GroupWelcome]{}, err
	}
	return page.Trim(out, r, func(t GroupWelcome) string { return page.ByID(t.ID) }), nil
}

// CreateWelcomeTemplate adds a template in WeCom and stores it with its
// template_id; a retry with the same idempotency key finishes or returns the
// first request's template.
func (s *Service) CreateWelcomeTemplate(ctx context.Context, p tenant.Principal, in GroupWelcomeInput) (GroupWelcome, error) {
	in, err := cleanWelcome(in)
	if err != nil {
		return GroupWelcome{}, err
	}
	var id int64
	if in.IdempotencyKey != "" {
		var status string
		err := s.db.QueryRowContext(ctx, `SELECT id, status FROM community_welcome_templates WHERE tenant_id = $1 AND idem_key = $2`, p.TenantID, in.IdempotencyKey).
			Scan(&id, &status)
		switch {
		case err == nil && status != "pending":
			return s.WelcomeTemplate(ctx, p.TenantID, id)
		case err != nil && !errors.Is(err, sql.ErrNoRows):
			return GroupWelcome{}, fmt.Errorf("community: unable to look up the idempotency key: %w", err)
		}
	}
	c, err := s.client(ctx, p.TenantID)
	if err != nil {
		return GroupWelcome{}, err
	}
	notify := 1
	if in.Notify != nil && !*in.Notify {
		notify = 0
	}
	if id == 0 {
		err := s.tx(ctx, func(tx *sql.Tx) error {
			err := tx.QueryRowContext(ctx, `INSERT INTO community_welcome_templates (tenant_id, name, text, attachment, notify, status, idem_key, created_at, updated_at)
				VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7, $7) RETURNING id`,
				p.TenantID, in.Name, in.Text, attachmentJSON(in.Attachment), notify, in.IdempotencyKey, db.Millis(s.now())).Scan(&id)
			if db.IsUniqueViolation(err) {
				return errs.E(errs.Conflict, "request_in_progress", "a request with this idempotency key is in progress; retry in a moment")
			}
			if err != nil {
				return fmt.Errorf("community: unable to record welcome template: %w", err)
			}
			return s.auditTx(ctx, tx, p, "community.welcome_template.create", "welcome_template", id, in.Name)
		})
		if err != nil {
			return GroupWelcome{}, err
		}
	}
	wt := in.wecom()
	wt.Notify = &notify
	tid, err := c.AddGroupWelcomeTemplate(ctx, wt)
	if err != nil {
		return GroupWelcome{}, fmt.Errorf("community: unable to add the welcome template in WeCom: %w", err)
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE community_welcome_templates SET template_id = $3, status = 'active', updated_at = $4 WHERE tenant_id = $1 AND id = $2`,
		p.TenantID, id, tid, db.Millis(s.now())); err != nil {
		return GroupWelcome{}, fmt.Errorf("community: unable to store welcome template %s: %w", tid, err)
	}
	return s.WelcomeTemplate(ctx, p.TenantID, id)
}

// UpdateWelcomeTemplate changes a template in WeCom and in Siyu.
func (s *Service) UpdateWelcomeTemplate(ctx context.Context, p tenant.Principal, id int64, in GroupWelcomeInput) (GroupWelcome, error) {
	cur, err := s.WelcomeTemplate(ctx, p.TenantID, id)
	if err != nil {
		return GroupWelcome{}, err
	}
	if cur.TemplateID == "" {
		return GroupWelcome{}, errs.E(errs.Conflict, "welcome_template_pending", "the template is still being created; retry its creation first")
	}
	if in, err = cleanWelcome(in); err != nil {
		return GroupWelcome{}, err
	}
	c, err := s.client(ctx, p.TenantID)
	if err != nil {
		return GroupWelcome{}, err
	}
	wt := in.wecom()
	wt.TemplateID = cur.TemplateID
	if err := c.EditGroupWelcomeTemplate(ctx, wt); err != nil {
		return GroupWelcome{}, fmt.Errorf("community: unable to change the welcome template in WeCom: %w", err)
	}
	err = s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE community_welcome_templates SET name = $3, text = $4, attachment = $5, updated_at = $6 WHERE tenant_id = $1 AND id = $2`,
			p.TenantID, id, in.Name, in.Text, attachmentJSON(in.Attachment), db.Millis(s.now())); err != nil {
			return fmt.Errorf("community: unable to update welcome template %d: %w", id, err)
		}
		return s.auditTx(ctx, tx, p, "community.welcome_template.update", "welcome_template", id, in.Name)
	})
	if err != nil {
		return GroupWelcome{}, err
	}
	return s.WelcomeTemplate(ctx, p.TenantID, id)
}

// DeleteWelcomeTemplate deletes a template in WeCom and in Siyu.
func (s *Service) DeleteWelcomeTemplate(ctx context.Context, p tenant.Principal, id int64) error {
	cur, err := s.WelcomeTemplate(ctx, p.TenantID, id)
	if err != nil {
		return err
	}
	if cur.TemplateID != "" {
		c, err := s.client(ctx, p.TenantID)
		if err != nil {
			return err
		}
		if err := c.DelGroupWelcomeTemplate(ctx, cur.TemplateID); err != nil && !wecom.IsCode(err, wecom.CodeInvalidParam) {
			return fmt.Errorf("community: unable to delete the welcome template in WeCom: %w", err)
		}
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		now := db.Millis(s.now())
		if _, err := tx.ExecContext(ctx, `UPDATE community_welcome_templates SET status = 'deleted', deleted_at = $3, updated_at = $3 WHERE tenant_id = $1 AND id = $2`,
			p.TenantID, id, now); err != nil {
			return fmt.Errorf("community: unable to delete welcome template %d: %w", id, err)
		}
		return s.auditTx(ctx, tx, p, "community.welcome_template.delete", "welcome_template", id, cur.Name)
	})
}
