package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"

	"shopagent/env"
	"shopagent/webshop"
)

// webFlags are the flags of `env web`.
type webFlags struct {
	addr      string
	split     string
	obs       string
	steps     int
	attrs     bool
	record    string
	replayDir string
}

func newEnvWebCmd() *cobra.Command {
	var sf shopFlags
	var wf webFlags
	cmd := &cobra.Command{
		Use:   "web [--addr :8090] [--data SHOP] [--split test] [--record DIR] [--replay-dir DIR]",
		Short: "Serve the shop as a website; record played episodes as human demonstrations",
		Long: `Serves the simulator's pages in a browser: a goal page with the instruction
and a search box, results pages, item pages with option buttons, the
description/features/reviews sub-pages and "buy now", which shows the reward.
Every click is the env action it stands for, on one env per browser session.

With --record DIR every finished episode is written to DIR as one trajectory
file (source "human", one row per step, the final reward on every row).
/replay steps through the episodes of any trajectory file under --replay-dir
(default: the --record directory): human, expert or rollout files.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			mode, err := env.ParseObsMode(wf.obs)
			if err != nil {
				return err
			}
			for _, d := range []string{wf.record, wf.replayDir} {
				if d != "" {
					if err := os.MkdirAll(d, 0o755); err != nil {
						return fmt.Errorf("web: %w", err)
					}
				}
			}
			replay := wf.replayDir
			if replay == "" {
				replay = wf.record
			}
			steps := wf.steps
			if steps == 0 {
				steps = -1 // webshop: negative = no cap
			}
			shop, err := sf.open()
			if err != nil {
				return err
			}
			srv, err := webshop.New(webshop.Config{
				Shop:      shop,
				Split:     wf.split,
				Env:       env.Config{Mode: mode, MaxSteps: steps, ShowAttributes: wf.attrs},
				RecordDir: wf.record,
				ReplayDir: replay,
			})
			if err != nil {
				return err
			}
			ctx, cancel := signalContext(cmd.Context())
			defer cancel()
			return serveWeb(ctx, wf.addr, srv, cmd)
		},
	}
	sf.register(cmd)
	f := cmd.Flags()
	f.StringVar(&wf.addr, "addr", ":8090", "listen address")
	f.StringVar(&wf.split, "split", "test", "goal split offered: test, dev, train or all")
	f.StringVar(&wf.obs, "obs", "text_rich", "observation mode recorded with each step: text or text_rich")
	f.IntVar(&wf.steps, "max-steps", 100, "end an episode with reward 0 after this many steps (0 = no cap)")
	f.BoolVar(&wf.attrs, "show-attributes", false, "offer the attributes sub-page on item pages")
	f.StringVar(&wf.record, "record", "", "directory for one trajectory file per finished episode (empty = no recording)")
	f.StringVar(&wf.replayDir, "replay-dir", "", "directory of trajectory files the /replay view may open (default: --record)")
	return cmd
}

// serveWeb listens on addr, prints the URL and serves until ctx ends.
func serveWeb(ctx context.Context, addr string, h http.Handler, cmd *cobra.Command) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("web: %w", err)
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	url := "http://" + ln.Addr().String()
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && tcp.IP.IsUnspecified() {
		url = fmt.Sprintf("http://localhost:%d", tcp.Port)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "web shop on %s (replay: %s/replay)\n", url, url)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("web: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("web: shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("web: %w", err)
	}
	return nil
}
