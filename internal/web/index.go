package web

import (
	"slices"
	"sync/atomic"

	"github.com/aimhub/aim/internal/solution"
)

// searchIndex keeps each solution's searchable text lowered from one
// request to the next, so that a search over 10,000 solutions scans
// prepared text instead of folding case through every description. It
// is a snapshot swapped whole: requests read it without a lock, and the
// one that finds a solution new or changed, or more kept than listed,
// makes the next snapshot of the solutions listed then.
type searchIndex struct {
	snap atomic.Pointer[map[string]*indexed]
}

// indexed is one solution's text, with the fields it was made from:
// when they are the same strings again (a listing hands out the same
// manifest's), comparing them costs next to nothing.
type indexed struct {
	title, desc, provider string
	tags                  []string
	text                  string
}

func (x *indexed) of(s *solution.Info) bool {
	return x.title == s.Title && x.desc == s.Description && x.provider == s.Provider.Name && slices.Equal(x.tags, s.Tags)
}

// lookup returns a text function for one request over all, and done,
// which keeps what that request had to make for the next.
func (ix *searchIndex) lookup(all []*solution.Info) (text func(*solution.Info) string, done func()) {
	var snap map[string]*indexed
	if p := ix.snap.Load(); p != nil {
		snap = *p
	}
	var made map[string]*indexed
	text = func(s *solution.Info) string {
		if x, ok := snap[s.Name]; ok && x.of(s) {
			return x.text
		}
		x := &indexed{title: s.Title, desc: s.Description, provider: s.Provider.Name, tags: s.Tags, text: searchText(s)}
		if made == nil {
			made = map[string]*indexed{}
		}
		made[s.Name] = x
		return x.text
	}
	done = func() {
		if made == nil && len(snap) <= len(all) {
			return
		}
		next := make(map[string]*indexed, len(all))
		for _, s := range all {
			if x, ok := made[s.Name]; ok {
				next[s.Name] = x
			} else if x, ok := snap[s.Name]; ok {
				next[s.Name] = x
			}
		}
		ix.snap.Store(&next)
	}
	return text, done
}
