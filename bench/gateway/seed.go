package main

import (
	"context"
	"fmt"
	"path/filepath"

	aimsol "github.com/aimhub/aim/internal/solution"

	"github.com/aimhub/aim/internal/spec"
	"github.com/aimhub/aim/internal/store"
)

// seed registers n sleeping solutions in aim's store, as if each had been
// deployed once and then put to sleep: a manifest, an image per
// component, generation 1. aim must not be running. Their containers
// don't exist and are never needed: nothing wakes them.
func seed(ctx context.Context, dataDir, image string, n int) error {
	st, err := store.Open(ctx, filepath.Join(dataDir, "aim.db"))
	if err != nil {
		return err
	}
	defer st.Close()
	for i := range n {
		name := fmt.Sprintf("sleeper-%05d", i)
		// Through the parser, as a deploy would, so that the stored
		// manifest has the defaults a real one has.
		m, err := spec.Parse(name+"/aim.yaml", []byte(fmt.Sprintf(sleeperManifest, name, image)))
		if err != nil {
			return fmt.Errorf("the seeded manifest: %w", err)
		}
		sol := &store.Solution{
			Name:       name,
			Manifest:   m,
			Images:     map[string]string{"web": "aim.local/seeded/" + name + "-web:g1"},
			Generation: 1,
			State:      string(aimsol.Sleeping),
		}
		if err := st.Put(ctx, sol); err != nil {
			return err
		}
	}
	return nil
}

const sleeperManifest = `name: %s
title: A sleeping solution
description: registered by bench/gateway; never woken
components:
  - name: web
    image: %s
scaling:
  idle: 10m
`
