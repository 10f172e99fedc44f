package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestInquiries(t *testing.T) {
	each(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		c := useClock(s)
		if err := s.PutProvider(ctx, &Provider{Name: "acme"}); err != nil {
			t.Fatal(err)
		}
		a := &Inquiry{Solution: "shop", Owner: "acme", Name: "Ann", Organisation: "Org", Email: "ann@example.com", Message: "hi"}
		if err := s.AddInquiry(ctx, a, true); err != nil {
			t.Fatal(err)
		}
		c.advance(time.Second)
		b := &Inquiry{Solution: "other", Name: "Bo", Email: "bo@example.com", Message: "hello"}
		if err := s.AddInquiry(ctx, b, false); err != nil {
			t.Fatal(err)
		}
		if a.ID == 0 || a.ID == b.ID || a.Delivery != DeliveryPending || b.Delivery != DeliveryNone {
			t.Fatalf("ids %d %d, deliveries %s %s", a.ID, b.ID, a.Delivery, b.Delivery)
		}
		for _, tc := range []struct {
			name string
			f    InquiryFilter
			want []int64
		}{
			{"all, newest first", InquiryFilter{}, []int64{b.ID, a.ID}},
			{"by solution", InquiryFilter{Solution: "shop"}, []int64{a.ID}},
			{"by owner", InquiryFilter{Owner: "acme"}, []int64{a.ID}},
			{"the admins'", InquiryFilter{OwnerSet: true}, []int64{b.ID}},
			{"limit", InquiryFilter{Limit: 1}, []int64{b.ID}},
		} {
			got, err := s.ListInquiries(ctx, tc.f)
			if err != nil {
				t.Fatal(err)
			}
			var ids []int64
			for _, q := range got {
				ids = append(ids, q.ID)
			}
			if len(ids) != len(tc.want) || (len(ids) > 0 && ids[0] != tc.want[0]) {
				t.Errorf("%s: %v, want %v", tc.name, ids, tc.want)
			}
		}
		got, _ := s.ListInquiries(ctx, InquiryFilter{Solution: "shop"})
		if q := got[0]; q.Name != "Ann" || q.Organisation != "Org" || q.Email != "ann@example.com" || q.Message != "hi" || q.Owner != "acme" {
			t.Errorf("read back %+v", q)
		}

		// Deliveries: due now, retried later, then delivered.
		due, err := s.DueDeliveries(ctx, 10)
		if err != nil || len(due) != 1 || due[0].ID != a.ID {
			t.Fatalf("due: %v %v", due, err)
		}
		if err := s.RecordDelivery(ctx, a.ID, errors.New("503 from the receiver"), s.now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if due, _ := s.DueDeliveries(ctx, 10); len(due) != 0 {
			t.Errorf("due before its retry time: %v", due)
		}
		c.advance(2 * time.Minute)
		due, _ = s.DueDeliveries(ctx, 10)
		if len(due) != 1 || due[0].Attempts != 1 || due[0].LastError != "503 from the receiver" {
			t.Fatalf("due after the wait: %+v", due)
		}
		if err := s.RecordDelivery(ctx, a.ID, nil, time.Time{}); err != nil {
			t.Fatal(err)
		}
		got, _ = s.ListInquiries(ctx, InquiryFilter{Solution: "shop"})
		if q := got[0]; q.Delivery != DeliveryDelivered || q.Attempts != 2 || q.DeliveredAt.IsZero() || q.LastError != "" {
			t.Errorf("after delivery: %+v", q)
		}
		// Given up.
		if err := s.RecordDelivery(ctx, b.ID, errors.New("gone"), time.Time{}); err != nil {
			t.Fatal(err)
		}
		got, _ = s.ListInquiries(ctx, InquiryFilter{Solution: "other"})
		if got[0].Delivery != DeliveryFailed {
			t.Errorf("given up: %+v", got[0])
		}
		if err := s.RecordDelivery(ctx, 12345, nil, time.Time{}); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown inquiry: %v", err)
		}
	})
}

func TestWebhookSecret(t *testing.T) {
	each(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		if _, err := s.WebhookSecret(ctx, "nobody", false); err == nil {
			t.Fatal("a secret for an unknown provider")
		}
		if err := s.PutProvider(ctx, &Provider{Name: "acme", Webhook: "https://hooks.example.com/x"}); err != nil {
			t.Fatal(err)
		}
		a, err := s.WebhookSecret(ctx, "acme", false)
		if err != nil || len(a) < 40 {
			t.Fatalf("%q %v", a, err)
		}
		if b, _ := s.WebhookSecret(ctx, "acme", false); b != a {
			t.Errorf("the secret changed without a rotation")
		}
		if err := s.PutProvider(ctx, &Provider{Name: "acme", Webhook: "https://hooks.example.com/y"}); err != nil {
			t.Fatal(err)
		}
		if b, _ := s.WebhookSecret(ctx, "acme", false); b != a {
			t.Errorf("updating the provider changed the secret")
		}
		if c, _ := s.WebhookSecret(ctx, "acme", true); c == a {
			t.Errorf("a rotation kept the secret")
		}
	})
}
