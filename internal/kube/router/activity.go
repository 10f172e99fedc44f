package router

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/aimhub/aim/api/v1alpha1"
)

// activity is what one gateway replica knows of a solution's use.
type activity struct {
	// baseline is the latest time in the table's last-request stamp that
	// was not a request: the table stamps a route when it is created and
	// when it turns ready. Reporting those would let a restarted replica,
	// or one that only watched another replica wake a solution, keep it
	// awake.
	baseline time.Time
	// reported is the latest time this replica wrote.
	reported time.Time
}

// nextReport decides what, if anything, a replica writes to a solution's
// aim.dev/last-active annotation now.
//
//   - last is the table's last-request stamp (start or end of the last
//     request that was not a bot's) and inflight the requests being
//     proxied (open WebSockets and event streams among them);
//   - annotation is the value on the Solution (zero if none).
//
// A request since the baseline is reported as its time; requests in flight
// are reported as now, for at most maxIdleWithConnections after the last
// request began or ended, so that a forgotten connection does not keep a
// solution awake for ever. Nothing older than what this replica reported,
// or than what the annotation already says, is written: the annotation
// only moves forwards, and N replicas write at most N times per interval
// for a busy solution.
func nextReport(now, last time.Time, inflight int64, a activity, annotation time.Time, maxIdleWithConnections time.Duration) (time.Time, bool) {
	var t time.Time
	if last.After(a.baseline) {
		t = last
	}
	if inflight > 0 && now.Sub(last) < maxIdleWithConnections {
		t = now
	}
	if t.IsZero() || !t.After(a.reported) || !t.After(annotation) {
		return time.Time{}, false
	}
	return t, true
}

// lastActiveOf reads a Solution's annotation; zero when missing or
// unreadable (the operator logs the latter).
func lastActiveOf(sol *v1alpha1.Solution) time.Time {
	t, err := time.Parse(time.RFC3339Nano, sol.Annotations[v1alpha1.AnnotationLastActive])
	if err != nil {
		return time.Time{}
	}
	return t
}

// activityPatch is a JSON merge patch that sets the annotation to t on
// condition that the object is still at resourceVersion rv, so that two
// replicas writing at once cannot move it backwards: the loser re-reads
// and writes only if its time is still later.
func activityPatch(t time.Time, rv string) ([]byte, error) {
	return json.Marshal(map[string]any{
		"metadata": map[string]any{
			"resourceVersion": rv,
			"annotations":     map[string]string{v1alpha1.AnnotationLastActive: t.UTC().Format(time.RFC3339Nano)},
		},
	})
}

// writeActivity moves a solution's annotation forward to t. cached is the
// informer's copy; on a conflict it reads the object afresh from reader.
// It returns false when the annotation was already at t or later.
func writeActivity(ctx context.Context, c client.Writer, reader client.Reader, cached *v1alpha1.Solution, t time.Time, log *slog.Logger) (bool, error) {
	sol := cached
	for attempt := 0; ; attempt++ {
		if !t.After(lastActiveOf(sol)) {
			return false, nil
		}
		data, err := activityPatch(t, sol.ResourceVersion)
		if err != nil {
			return false, err
		}
		target := &v1alpha1.Solution{}
		target.Namespace, target.Name = sol.Namespace, sol.Name
		err = c.Patch(ctx, target, client.RawPatch(types.MergePatchType, data))
		if err == nil {
			return true, nil
		}
		if !apierrors.IsConflict(err) || attempt == 3 {
			return false, fmt.Errorf("writing the last activity of %s: %w", sol.Name, err)
		}
		log.Debug("last-active conflict; reading the solution again", "solution", sol.Name)
		fresh := &v1alpha1.Solution{}
		if err := reader.Get(ctx, client.ObjectKeyFromObject(sol), fresh); err != nil {
			if apierrors.IsNotFound(err) {
				return false, nil // removed meanwhile: nothing to keep awake
			}
			return false, fmt.Errorf("reading %s again: %w", sol.Name, err)
		}
		sol = fresh
	}
}
