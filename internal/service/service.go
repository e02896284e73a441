package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/celpolicy/celpolicy/engine"
	"github.com/celpolicy/celpolicy/internal/config"
	"github.com/celpolicy/celpolicy/schedule"
	"github.com/celpolicy/celpolicy/server"
	"github.com/celpolicy/celpolicy/telemetry"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Telemetry is where a pass reports decisions and action outcomes.
type Telemetry struct {
	Metrics *telemetry.Metrics
	Audit   *telemetry.Audit
}

// Pass runs one replication pass of one policy on a policy set.
type Pass func(ctx context.Context, set *engine.PolicySet, policy string, tel Telemetry) error

// Service is a running celpolicy serve.
type Service struct {
	cfg     *config.Config
	log     *slog.Logger
	engine  *engine.Engine
	sched   *schedule.Scheduler
	tel     Telemetry
	handler http.Handler
}

// New loads the policies and builds every part; it fails when the
// policies do not load. pass runs scheduled passes; compile options (a
// decision memo, say) are added to the configuration's.
func New(cfg *config.Config, logger *slog.Logger, pass Pass, compile ...engine.Option) (*Service, error) {
	if pass == nil {
		return nil, errors.New("service: pass must not be nil")
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics, err := telemetry.NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, log: logger,
		tel: Telemetry{Metrics: metrics, Audit: telemetry.NewAudit(logger.With(slog.String("stream", "audit")))}}
	s.sched, err = schedule.New(func(ctx context.Context, policy string) error {
		return pass(ctx, s.engine.PolicySet(), policy, s.tel)
	}, schedule.WithLogger(logger), schedule.WithObserver(runObserver{metrics}))
	if err != nil {
		return nil, err
	}
	opts := []engine.EngineOption{
		engine.WithCompileOptions(append([]engine.Option{engine.WithCombining(cfg.Combining)}, compile...)...),
		engine.WithLogger(logger),
		engine.WithDebounce(cfg.ReloadDebounce),
		engine.WithPolling(cfg.PollInterval),
		engine.OnReload(s.reloaded),
	}
	s.engine, err = engine.NewEngine(cfg.Policies, opts...)
	if err != nil {
		return nil, fmt.Errorf("load policies: %w", err)
	}
	set := s.engine.PolicySet()
	metrics.ObserveLoad(set, time.Now())
	if err := s.plan(set); err != nil {
		return nil, err
	}
	s.handler, err = server.New(
		server.WithReadiness(func() error {
			if s.engine.PolicySet() == nil {
				return errors.New("no policy set loaded")
			}
			return nil
		}),
		server.WithMetrics(reg, cfg.MetricsPath),
	)
	if err != nil {
		return nil, err
	}
	logger.Info("policy set loaded", "revision", set.Revision(), "policies", len(set.Policies()),
		"scheduled", len(s.sched.Entries()))
	return s, nil
}

// reloaded is the engine's reload hook: metrics, audit, re-planning.
func (s *Service) reloaded(ev engine.ReloadEvent) {
	s.tel.Metrics.ObserveReload(ev)
	s.tel.Audit.PolicySetChange(context.Background(), ev)
	if ev.Err != nil {
		return
	}
	if err := s.plan(s.engine.PolicySet()); err != nil {
		s.log.Error("re-planning schedules failed", "error", err.Error())
	}
}

func (s *Service) plan(set *engine.PolicySet) error {
	if err := s.sched.Plan(set); err != nil {
		return err
	}
	var scheduled []string
	for _, e := range s.sched.Entries() {
		scheduled = append(scheduled, e.Policy)
	}
	s.tel.Metrics.ObserveSchedules(scheduled)
	return nil
}

type runObserver struct{ m *telemetry.Metrics }

func (o runObserver) Ran(policy string, err error) { o.m.ObserveRun(policy, err) }
func (o runObserver) Skipped(policy string)        { o.m.ObserveSkippedRun(policy) }

// Engine returns the policy engine, for evaluating images in process.
func (s *Service) Engine() *engine.Engine { return s.engine }

// Telemetry returns the metrics and audit log.
func (s *Service) Telemetry() Telemetry { return s.tel }

// Handler returns the HTTP handler.
func (s *Service) Handler() http.Handler { return s.handler }

// Serve runs until ctx ends: it watches the policies, runs the schedule
// and serves HTTP on ln. Then it stops accepting requests and waits up to
// the configured shutdown timeout for requests and running passes.
func (s *Service) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
	runCtx, stopRunning := context.WithCancel(ctx)
	defer stopRunning()
	watchDone := make(chan error, 1)
	go func() { watchDone <- s.engine.Watch(runCtx) }()
	schedDone := make(chan struct{})
	go func() { s.sched.Run(runCtx); close(schedDone) }()
	httpDone := make(chan error, 1)
	go func() { httpDone <- srv.Serve(ln) }()
	s.log.Info("serving", "address", ln.Addr().String(), "metrics", s.cfg.MetricsPath)

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-httpDone:
	}
	s.log.Info("shutting down", "timeout", s.cfg.ShutdownTimeout.String())
	shutdownCtx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	var errs []error
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		errs = append(errs, fmt.Errorf("http server: %w", serveErr))
	}
	if err := srv.Shutdown(shutdownCtx); err != nil {
		errs = append(errs, fmt.Errorf("http server shutdown: %w", err))
	}
	stopRunning()
	<-schedDone
	if err := s.sched.Stop(shutdownCtx); err != nil {
		errs = append(errs, err)
	}
	if err := <-watchDone; err != nil {
		errs = append(errs, err)
	}
	s.log.Info("stopped")
	return errors.Join(errs...)
}
