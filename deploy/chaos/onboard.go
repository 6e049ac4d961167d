package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tallyhq/tally/transport/deviceproto"
)

// keyRace is one one-time key that several devices, each on another node,
// try to onboard with at once.
type keyRace struct {
	Key        string          `json:"key"`
	At         time.Time       `json:"at"`
	Contenders []raceContender `json:"contenders"`
}

type raceContender struct {
	Device  string `json:"device"`
	Node    string `json:"node"`
	Won     bool   `json:"won"`
	Unknown bool   `json:"unknown,omitempty"`
	Outcome string `json:"outcome"`
}

// race has contenders devices onboard with secret concurrently, spread
// over nodes.
func race(ctx context.Context, run string, index int, k oneTimeKey, nodes []*node, contenders int) keyRace {
	kr := keyRace{Key: k.ID, At: time.Now().UTC(), Contenders: make([]raceContender, contenders)}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range contenders {
		n := nodes[(index+i)%len(nodes)]
		rc := &kr.Contenders[i]
		rc.Device = fmt.Sprintf("%s-race%d-%d", run, index, i)
		rc.Node = n.id
		wg.Add(1)
		go func() {
			defer wg.Done()
			key, err := deviceproto.GenerateDeviceKey()
			if err != nil {
				rc.Unknown, rc.Outcome = true, err.Error()
				return
			}
			cfg := dialConfig(rc.Device)
			cfg.Key = key
			dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			c, err := deviceproto.Dial(dctx, "wss://"+n.ip+":8443/ws/device", cfg)
			if err != nil {
				// Never asked: it cannot have onboarded.
				rc.Outcome = "dial: " + shortError(err)
				return
			}
			defer c.Close()
			<-start
			_, err = c.Onboard(dctx, k.Secret)
			var perr *deviceproto.Error
			switch {
			case err == nil:
				rc.Won, rc.Outcome = true, "onboarded"
			case errors.As(err, &perr) && perr.Code != deviceproto.CodeNotApplied && perr.Code != deviceproto.CodeShuttingDown && perr.Code != deviceproto.CodeInternal:
				rc.Outcome = "refused: " + perr.Code
			default:
				rc.Unknown, rc.Outcome = true, shortError(err)
			}
		}()
	}
	time.Sleep(200 * time.Millisecond) // let the dials finish
	close(start)
	wg.Wait()
	return kr
}
