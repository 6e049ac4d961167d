package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"fmt"

	"github.com/tallyhq/tally/core"
	"github.com/tallyhq/tally/core/licensingid"
)

// mainLicensingID proposes the node's local licensing ID as the main one
// (the first proposed wins, so on a store that has one nothing changes)
// and returns the main ID, which signs what devices are told and which
// rights files are bound to.
func mainLicensingID(ctx context.Context, store core.Store, local *licensingid.ID, nodeID string) (*licensingid.ID, error) {
	proposal, err := asMainID(local, nodeID)
	if err != nil {
		return nil, err
	}
	cmd := &core.Audited{Actor: core.Actor{User: "tallyd", Address: "local"}, Command: &core.SetMainLicensingID{ID: proposal}}
	if _, err := store.Apply(ctx, cmd); err != nil {
		return nil, fmt.Errorf("set the main licensing ID: %w", err)
	}
	var main core.MainLicensingID
	err = store.Read(ctx, func(s *core.State) error {
		var ok bool
		if main, ok = s.MainLicensingID(); !ok {
			return fmt.Errorf("no main licensing ID after setting one")
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return fromMainID(main)
}

// asMainID puts a licensing ID in the form the state keeps.
func asMainID(id *licensingid.ID, nodeID string) (core.MainLicensingID, error) {
	key, err := x509.MarshalPKCS8PrivateKey(id.Key)
	if err != nil {
		return core.MainLicensingID{}, err
	}
	return core.MainLicensingID{Certificate: id.Certificate, Key: key, Node: nodeID}, nil
}

// fromMainID turns the replicated form back into a licensing ID.
func fromMainID(m core.MainLicensingID) (*licensingid.ID, error) {
	parsed, err := x509.ParsePKCS8PrivateKey(m.Key)
	if err != nil {
		return nil, fmt.Errorf("main licensing ID: %w", err)
	}
	key, ok := parsed.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("main licensing ID: not an ECDSA key")
	}
	return &licensingid.ID{Key: key, Certificate: m.Certificate}, nil
}
