package certstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A lock is a Lease named as a key would be (objectName of "locks/" and
// the lock's name). Its holder renews it every LockTTL/4; a Lease not
// renewed for LockTTL is stale and the next Lock takes it over, so a
// replica that crashed while obtaining a certificate blocks the others
// for LockTTL at most. Unlock deletes the Lease if it is still the
// caller's.

// heldLock is a Lease this process holds, and its renewer.
type heldLock struct {
	holder string
	stop   context.CancelFunc
	done   chan struct{}
	// lease is the latest version written; only the renewer writes it
	// until done is closed.
	lease *coordinationv1.Lease
}

// errHeld says the lock is someone else's, and fresh.
var errHeld = errors.New("held by another")

// Lock takes the named lock, waiting while another holder keeps it fresh.
func (s *Storage) Lock(ctx context.Context, name string) error {
	holder := s.cfg.Identity + "-" + randomHex(4)
	leaseName := s.objectName("locks/" + name)
	for {
		lease, err := s.tryLock(ctx, leaseName, name, holder)
		if err == nil {
			rctx, stop := context.WithCancel(context.WithoutCancel(ctx))
			h := &heldLock{holder: holder, stop: stop, done: make(chan struct{}), lease: lease}
			s.mu.Lock()
			s.held[name] = h
			s.mu.Unlock()
			go s.renew(rctx, name, h)
			return nil
		}
		if !errors.Is(err, errHeld) {
			if !transient(err) {
				return fmt.Errorf("locking %s (Lease %s): %w", name, leaseName, err)
			}
			// An issuance waits for the lock rather than fail on an API
			// server that is restarting or throttling.
			s.log.Warn("locking a certificate: trying again", "lock", name, "lease", leaseName, "err", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the lock %s (Lease %s): %w", name, leaseName, ctx.Err())
		case <-time.After(s.cfg.LockPoll):
		}
	}
}

// tryLock creates the Lease, or takes it over if it is stale; errHeld if
// it is fresh or another took it first.
func (s *Storage) tryLock(ctx context.Context, leaseName, name, holder string) (*coordinationv1.Lease, error) {
	now := metav1.NewMicroTime(time.Now())
	ttl := int32(math.Ceil(s.cfg.LockTTL.Seconds()))
	spec := coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &ttl, AcquireTime: &now, RenewTime: &now}
	lease, err := s.leases.Create(ctx, &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{
			Name:        leaseName,
			Namespace:   s.cfg.Namespace,
			Labels:      map[string]string{LabelStorage: s.cfg.Prefix, "app.kubernetes.io/managed-by": "aim"},
			Annotations: map[string]string{AnnotationKey: "locks/" + name},
		},
		Spec: spec,
	}, metav1.CreateOptions{})
	if err == nil {
		return lease, nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return nil, err
	}
	cur, err := s.leases.Get(ctx, leaseName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, errHeld // released just now: try again after the poll
	}
	if err != nil {
		return nil, err
	}
	if !stale(cur, now.Time) {
		return nil, errHeld
	}
	prev := "nobody"
	if cur.Spec.HolderIdentity != nil {
		prev = *cur.Spec.HolderIdentity
	}
	cur.Spec = spec
	// The update carries cur's resourceVersion: of two replicas taking
	// over the same stale Lease, one gets a conflict.
	lease, err = s.leases.Update(ctx, cur, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return nil, errHeld
	}
	if err != nil {
		return nil, err
	}
	s.log.Warn("took over a stale certificate lock", "lock", name, "lease", leaseName, "from", prev)
	return lease, nil
}

// transient reports whether an API error may pass by itself: not a
// refusal (RBAC, validation) that trying again cannot change.
func transient(err error) bool {
	return !(apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) ||
		apierrors.IsInvalid(err) || apierrors.IsBadRequest(err) ||
		apierrors.IsMethodNotSupported(err) || apierrors.IsNotAcceptable(err) ||
		apierrors.IsUnsupportedMediaType(err) ||
		// From a create, the namespace is missing (a wrong
		// --acme-namespace): waiting will not make it.
		apierrors.IsNotFound(err))
}

// stale reports whether the Lease's holder has not renewed it within its
// duration, by now.
func stale(l *coordinationv1.Lease, now time.Time) bool {
	if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity == "" {
		return true
	}
	renewed := l.CreationTimestamp.Time
	if l.Spec.RenewTime != nil {
		renewed = l.Spec.RenewTime.Time
	}
	ttl := time.Duration(0)
	if l.Spec.LeaseDurationSeconds != nil {
		ttl = time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second
	}
	return now.After(renewed.Add(ttl))
}

// renew keeps h's Lease fresh until ctx ends. A Lease found taken over
// (this process stalled past the TTL) is given up and logged.
func (s *Storage) renew(ctx context.Context, name string, h *heldLock) {
	defer close(h.done)
	t := time.NewTicker(s.cfg.LockTTL / 4)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		l := h.lease.DeepCopy()
		now := metav1.NewMicroTime(time.Now())
		l.Spec.RenewTime = &now
		updated, err := s.leases.Update(ctx, l, metav1.UpdateOptions{})
		if err == nil {
			h.lease = updated
			continue
		}
		if ctx.Err() != nil {
			return
		}
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			s.log.Error("lost a certificate lock: its Lease was taken over or removed while held", "lock", name, "lease", l.Name, "holder", h.holder)
			return
		}
		s.log.Warn("renewing a certificate lock", "lock", name, "lease", l.Name, "err", err)
	}
}

// Unlock releases the named lock: it stops renewing the Lease and
// deletes it, unless another holder has it by now.
func (s *Storage) Unlock(ctx context.Context, name string) error {
	s.mu.Lock()
	h := s.held[name]
	delete(s.held, name)
	s.mu.Unlock()
	if h == nil {
		return fmt.Errorf("unlocking %s: not locked here", name)
	}
	h.stop()
	<-h.done
	uid, rv := h.lease.UID, h.lease.ResourceVersion
	err := s.leases.Delete(ctx, h.lease.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid, ResourceVersion: &rv}})
	switch {
	case err == nil, apierrors.IsNotFound(err):
		return nil
	case apierrors.IsConflict(err):
		// Changed since our last write: a renewal stop cancelled may have
		// gone through all the same, or another holder took it over after
		// this process stalled. Ours still, it goes; else it is theirs.
		cur, gerr := s.leases.Get(ctx, h.lease.Name, metav1.GetOptions{})
		if gerr == nil && cur.Spec.HolderIdentity != nil && *cur.Spec.HolderIdentity == h.holder {
			uid, rv := cur.UID, cur.ResourceVersion
			err = s.leases.Delete(ctx, cur.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid, ResourceVersion: &rv}})
			if err == nil || apierrors.IsNotFound(err) {
				return nil
			}
			return fmt.Errorf("unlocking %s (Lease %s): %w", name, h.lease.Name, err)
		}
		s.log.Warn("a certificate lock was taken over before it was released", "lock", name, "lease", h.lease.Name)
		return nil
	}
	return fmt.Errorf("unlocking %s (Lease %s): %w", name, h.lease.Name, err)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
