package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/siyu-dev/siyu/internal/connector/wecom"
	"github.com/siyu-dev/siyu/internal/errs"
	"github.com/siyu-dev/siyu/internal/moment"
	"github.com/siyu-dev/siyu/internal/tenant"
)

const momentFlow = "A moment (客户朋友圈) task asks chosen staff to publish a post to their customers, chosen by tag. " +
	"Upload images or a video first (POST /moments/media: a media_id valid three days), then create the task " +
	"(POST /moments, with an idempotency key): Siyu sends it to WeCom (add_moment_task) in the background, " +
	"follows WeCom's job until the moment exists, and polls each sender's publish state and the customers who can see it " +
	"until every sender published or result_hours passed. Status: pending → submitting → creating → publishing → finished " +
	"(or cancelled, failed with error_code and error_message)."

// MomentInput creates a moment task.
type MomentInput struct {
	Body moment.TaskInput
}

// MomentOutput is one moment task.
type MomentOutput struct {
	Body moment.Task
}

// MomentPath names a moment task.
type MomentPath struct {
	ID int64 `path:"id" doc:"The task's id."`
}

// MomentListInput filters the task list.
type MomentListInput struct {
	Status string `query:"status" enum:"pending,submitting,creating,publishing,finished,cancelled,failed," doc:"Only tasks in this status."`
	PageParams
}

// MomentCustomersInput pages a task's customers.
type MomentCustomersInput struct {
	MomentPath
	UserID  string `query:"userid" doc:"Only this sender's customers (WeCom userid)."`
	Reached string `query:"reached" enum:"true,false," doc:"Only customers who can (true) or cannot yet (false) see it."`
	PageParams
}

// MomentMediaInput uploads an image or video.
type MomentMediaInput struct {
	Type     string `query:"type" enum:"image,video" default:"image" doc:"What the file is."`
	Filename string `query:"filename" maxLength:"255" doc:"The file's name, for a raw body (a multipart upload carries its own)."`
}

// MomentMediaOutput is an uploaded media_id.
type MomentMediaOutput struct {
	Body struct {
		MediaID string `json:"media_id" doc:"Use in attachments within three days."`
		Type    string `json:"type"`
	}
}

type momentUploadKey struct{}

// momentUpload reads the uploaded file (multipart field file, or the raw body)
// with WeCom's 10 MB limit before the operation runs.
func (a *API) momentUpload(ctx huma.Context, next func(huma.Context)) {
	fail := func(err error) {
		prob := problemFor(ctx.Context(), a.deps.Log, err)
		prob.Instance = ctx.URL().Path
		_ = huma.WriteErr(a.API, ctx, prob.Status, prob.Detail, &codeCarrier{prob})
	}
	p, ok := ctx.Context().Value(principalCtxKey{}).(tenant.Principal)
	if !ok {
		fail(missingKey)
		return
	}
	if err := p.Require(tenant.PermMessagesSend); err != nil {
		fail(err)
		return
	}
	up, err := readUpload(ctx, wecom.MaxMomentMediaBytes)
	if errors.Is(err, errFileTooLarge) {
		err = errs.E(errs.TooLarge, "file_too_large", "a moment's image or video is at most 10 MB")
	}
	if err != nil {
		fail(err)
		return
	}
	next(huma.WithValue(ctx, momentUploadKey{}, up))
}

// registerMoments mounts its operations when Deps.Moments is set.
func (a *API) registerMoments() {
	if a.deps.Moments == nil {
		return
	}
	svc := a.deps.Moments
	tags := []string{"Moments"}
	register(a, huma.Operation{
		OperationID: "upload-moment-media", Method: http.MethodPost, Path: "/moments/media", Tags: tags,
		Summary: "Upload an image or video for a moment", DefaultStatus: http.StatusCreated,
		Description: "Send the file as multipart/form-data (field `file`) or as the raw body. At most 10 MB " +
			"(WeCom: images up to 1555200 pixels, videos mp4 up to 30 s). The media_id is valid for three days.",
		RequestBody: &huma.RequestBody{Content: map[string]*huma.MediaType{
			"multipart/form-data": {Schema: &huma.Schema{Type: "object", Required: []string{"file"}, Properties: map[string]*huma.Schema{
				"file": {Type: "string", Format: "binary"},
			}}},
			"application/octet-stream": {Schema: &huma.Schema{Type: "string", Format: "binary"}},
		}},
		Middlewares: huma.Middlewares{a.momentUpload},
		Errors:      []int{http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity},
	}, tenant.PermMessagesSend, func(ctx context.Context, p tenant.Principal, in *MomentMediaInput) (*MomentMediaOutput, error) {
		up, ok := ctx.Value(momentUploadKey{}).(*upload)
		if !ok {
			return nil, errs.Field("body", "file_required", "send the file as the body or as the multipart field file")
		}
		name := in.Filename
		if up.name != "" {
			name = up.name
		}
		if name == "" {
			name = in.Type
		}
		id, err := svc.UploadMedia(ctx, p, in.Type, name, up.data)
		if err != nil {
			return nil, err
		}
		out := &MomentMediaOutput{}
		out.Body.MediaID, out.Body.Type = id, in.Type
		return out, nil
	})
	register(a, huma.Operation{
		OperationID: "create-moment", Method: http.MethodPost, Path: "/moments", Tags: tags,
		Summary: "Create a moment task", DefaultStatus: http.StatusCreated,
		Description: momentFlow + "\n\nText at most 2,000 characters; 1–9 images, or one video, or one link. Tags must be " +
			"bound to WeCom corp tags (code tag_not_bound otherwise). Creating again with the same key returns the first task (200).",
		Errors: []int{http.StatusUnprocessableEntity},
	}, tenant.PermMessagesSend, func(ctx context.Context, p tenant.Principal, in *MomentInput) (*struct {
		Status int
		Body   moment.Task
	}, error) {
		t, created, err := svc.Create(ctx, p, in.Body)
		if err != nil {
			return nil, err
		}
		status := http.StatusCreated
		if !created {
			status = http.StatusOK
		}
		return &struct {
			Status int
			Body   moment.Task
		}{status, t}, nil
	})
	register(a, huma.Operation{
		OperationID: "list-moments", Method: http.MethodGet, Path: "/moments", Tags: tags,
		Summary: "List moment tasks", Description: "Newest first.",
	}, tenant.PermMessagesRead, func(ctx context.Context, p tenant.Principal, in *MomentListInput) (*ListOutput[moment.Task], error) {
		pg, err := svc.List(ctx, p, moment.Filter{Status: moment.Status(in.Status)}, in.Request())
		if err != nil {
			return nil, err
		}
		return listOf(pg, func(t moment.Task) moment.Task { return t }), nil
	})
	register(a, huma.Operation{
		OperationID: "get-moment", Method: http.MethodGet, Path: "/moments/{id}", Tags: tags,
		Summary: "Get a moment task", Description: "With its totals: senders, published, customers in range and reached.",
	}, tenant.PermMessagesRead, func(ctx context.Context, p tenant.Principal, in *MomentPath) (*MomentOutput, error) {
		t, err := svc.Get(ctx, p, in.ID)
		return &MomentOutput{Body: t}, err
	})
	register(a, huma.Operation{
		OperationID: "refresh-moment", Method: http.MethodPost, Path: "/moments/{id}/refresh", Tags: tags,
		Summary: "Read a task's results from WeCom now", Description: "Instead of waiting for the next poll.",
	}, tenant.PermMessagesRead, func(ctx context.Context, p tenant.Principal, in *MomentPath) (*MomentOutput, error) {
		t, err := svc.Refresh(ctx, p, in.ID)
		return &MomentOutput{Body: t}, err
	})
	register(a, huma.Operation{
		OperationID: "cancel-moment", Method: http.MethodPost, Path: "/moments/{id}/cancel", Tags: tags,
		Summary: "Cancel a moment task",
		Description: "Staff who have not published it can no longer do so; what was published stays. A task WeCom is still " +
			"creating is cancelled as soon as it exists (cancel_requested). A final task answers 409 moment_final.",
		Errors: []int{http.StatusConflict},
	}, tenant.PermMessagesSend, func(ctx context.Context, p tenant.Principal, in *MomentPath) (*MomentOutput, error) {
		t, err := svc.Cancel(ctx, p, in.ID)
		return &MomentOutput{Body: t}, err
	})
	register(a, huma.Operation{
		OperationID: "list-moment-senders", Method: http.MethodGet, Path: "/moments/{id}/senders", Tags: tags,
		Summary: "A task's results per staff member", Description: "By WeCom userid: published or not, customers in range and reached.",
	}, tenant.PermMessagesRead, func(ctx context.Context, p tenant.Principal, in *struct {
		MomentPath
		PageParams
	}) (*ListOutput[moment.Sender], error) {
		pg, err := svc.Senders(ctx, p, in.ID, in.Request())
		if err != nil {
			return nil, err
		}
		return listOf(pg, func(s moment.Sender) moment.Sender { return s }), nil
	})
	register(a, huma.Operation{
		OperationID: "list-moment-customers", Method: http.MethodGet, Path: "/moments/{id}/customers", Tags: tags,
		Summary: "A task's customers", Description: "Customers in each sender's range, and whether they can see it.",
	}, tenant.PermMessagesRead, func(ctx context.Context, p tenant.Principal, in *MomentCustomersInput) (*ListOutput[moment.Viewer], error) {
		f := moment.ViewerFilter{UserID: in.UserID}
		if in.Reached != "" {
			v := in.Reached == "true"
			f.Reached = &v
		}
		pg, err := svc.Viewers(ctx, p, in.ID, f, in.Request())
		if err != nil {
			return nil, err
		}
		return listOf(pg, func(c moment.Viewer) moment.Viewer { return c }), nil
	})
}
