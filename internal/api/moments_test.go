package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/siyu-dev/siyu/internal/app/apptest"
	"github.com/siyu-dev/siyu/internal/connector/wecom/wecomtest"
	"github.com/siyu-dev/siyu/internal/moment"
	"github.com/siyu-dev/siyu/internal/tag"
)

// A moment through the API: upload an image, create the task (twice with one
// key: one task), refused input with its code, results per staff member and
// per customer as the staff publish, cancel refused once it is final.
func TestMomentsAPI(t *testing.T) {
	eachServer(t, func(t *testing.T, s *apptest.Server) {
		w := s.NewWorkspace(t, "moments")
		sim := s.NewWeComSim(t, w, wecomtest.Options{CorpOptions: wecomtest.CorpOptions{Now: time.Now}})
		for _, u := range []string{"zhangsan", "lisi"} {
			if _, err := sim.PutStaff(wecomtest.Staff{UserID: u}); err != nil {
				t.Fatal(err)
			}
		}
		g, err := sim.PutTagGroup(wecomtest.TagGroup{Name: "会员", Tags: []wecomtest.Tag{{Name: "金卡"}}})
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range []string{"zhangsan", "lisi"} {
			if _, err := sim.PutContact(wecomtest.Contact{}, wecomtest.Follow{UserID: u, TagIDs: []string{g.Tags[0].ID}}); err != nil {
				t.Fatal(err)
			}
		}
		s.ConnectWeCom(t, w, sim)
		var grp tag.Group
		mustStatus(t, s.Do(t, "POST", "/api/v1/tag-groups", w.Key, map[string]any{"name": "会员"}), 201).JSON(t, &grp)
		mustStatus(t, s.Do(t, "PUT", fmt.Sprintf("/api/v1/connectors/wecom/tag-bindings/%d", grp.ID), w.Key, map[string]any{}), 200)
		var loose tag.Group
		mustStatus(t, s.Do(t, "POST", "/api/v1/tag-groups", w.Key, map[string]any{"name": "本地"}), 201).JSON(t, &loose)
		var unbound tag.Tag
		mustStatus(t, s.Do(t, "POST", "/api/v1/tags", w.Key, map[string]any{"group_id": loose.ID, "name": "散客"}), 201).JSON(t, &unbound)
		var gold int64
		all, _ := s.App.Tags.AllTags(t.Context(), w.ID)
		for _, x := range all {
			if x.Ref == "会员/金卡" {
				gold = x.ID
			}
		}

		// Upload an image as multipart.
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		fw, _ := mw.CreateFormFile("file", "poster.jpg")
		fw.Write([]byte("\xff\xd8\xff fake jpeg"))
		mw.Close()
		req, _ := http.NewRequest("POST", s.URL+"/api/v1/moments/media?type=image", &buf)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		req.Header.Set("Authorization", "Bearer "+w.Key)
		hres, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var media struct {
			MediaID string `json:"media_id"`
		}
		err = json.NewDecoder(hres.Body).Decode(&media)
		hres.Body.Close()
		if hres.StatusCode != 201 || err != nil || media.MediaID == "" {
			t.Fatalf("upload: %d %v %+v", hres.StatusCode, err, media)
		}

		body := map[string]any{"key": "k1", "text": "金卡会员日", "staff_userids": []string{"zhangsan", "lisi"}, "tag_ids": []int64{gold},
			"attachments": []map[string]any{{"type": "image", "media_id": media.MediaID}}}
		var task moment.Task
		mustStatus(t, s.Do(t, "POST", "/api/v1/moments", w.Key, body), 201).JSON(t, &task)
		var again moment.Task
		mustStatus(t, s.Do(t, "POST", "/api/v1/moments", w.Key, body), 200).JSON(t, &again)
		if again.ID != task.ID {
			t.Fatalf("same key, two tasks: %d %d", task.ID, again.ID)
		}
		for _, c := range []struct {
			body map[string]any
			code string
		}{
			{map[string]any{"text": strings.Repeat("长", 2001), "staff_userids": []string{"zhangsan"}}, "too_long"},
			{map[string]any{"text": "x", "staff_userids": []string{"zhangsan"}, "tag_ids": []int64{unbound.ID}}, "tag_not_bound"},
			{map[string]any{"text": "x", "staff_userids": []string{"wangwu"}}, "unknown_staff"},
			{map[string]any{"text": "x", "staff_userids": []string{"zhangsan"}, "attachments": []map[string]any{
				{"type": "video", "media_id": "a"}, {"type": "image", "media_id": "b"}}}, "mixed"},
		} {
			expectProblem(t, s.Do(t, "POST", "/api/v1/moments", w.Key, c.body), 422, c.code)
		}

		path := fmt.Sprintf("/api/v1/moments/%d", task.ID)
		refresh := func(cond func(moment.Task) bool) moment.Task {
			t.Helper()
			deadline := time.Now().Add(10 * time.Second)
			for {
				var got moment.Task
				mustStatus(t, s.Do(t, "POST", path+"/refresh", w.Key, nil), 200).JSON(t, &got)
				if cond(got) {
					return got
				}
				if time.Now().After(deadline) {
					t.Fatalf("task %+v", got)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		task = refresh(func(x moment.Task) bool { return x.Status == moment.StatusPublishing })
		if err := sim.StaffPublishes("lisi", task.MomentID); err != nil {
			t.Fatal(err)
		}
		task = refresh(func(x moment.Task) bool { return x.PublishedCount == 1 })
		var senders struct {
			Items []moment.Sender `json:"items"`
		}
		mustStatus(t, s.Do(t, "GET", path+"/senders", w.Key, nil), 200).JSON(t, &senders)
		if len(senders.Items) != 2 || senders.Items[0].UserID != "lisi" || senders.Items[0].Status != moment.SenderPublished ||
			senders.Items[1].Status != moment.SenderPending || senders.Items[1].VisibleCount != 1 {
			t.Fatalf("senders %+v", senders.Items)
		}
		var viewers struct {
			Items      []moment.Viewer `json:"items"`
			NextCursor string          `json:"next_cursor"`
		}
		mustStatus(t, s.Do(t, "GET", path+"/customers?reached=true", w.Key, nil), 200).JSON(t, &viewers)
		if len(viewers.Items) != 1 || viewers.Items[0].UserID != "lisi" || viewers.Items[0].CustomerID == 0 {
			t.Fatalf("reached %+v", viewers.Items)
		}
		if err := sim.StaffPublishes("zhangsan", task.MomentID); err != nil {
			t.Fatal(err)
		}
		refresh(func(x moment.Task) bool { return x.Status == moment.StatusFinished })
		expectProblem(t, s.Do(t, "POST", path+"/cancel", w.Key, nil), 409, "moment_final")
		var list struct {
			Items []moment.Task `json:"items"`
		}
		mustStatus(t, s.Do(t, "GET", "/api/v1/moments?status=finished", w.Key, nil), 200).JSON(t, &list)
		if len(list.Items) != 1 || list.Items[0].ReachedCount != 2 {
			t.Fatalf("list %+v", list.Items)
		}
		mustStatus(t, s.Do(t, "GET", "/api/v1/moments", w.Key, nil), 200).JSON(t, &list)
		mustStatus(t, s.Do(t, "GET", path+"/customers?limit=1", w.Key, nil), 200).JSON(t, &viewers)
		if len(list.Items) != 1 || len(viewers.Items) != 1 || viewers.NextCursor == "" {
			t.Fatalf("unfiltered: %+v %+v", list.Items, viewers)
		}
		expectProblem(t, s.Do(t, "GET", "/api/v1/moments/999999", w.Key, nil), 404, "moment_not_found")
	})
}
