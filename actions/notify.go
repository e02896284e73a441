package actions

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/celpolicy/celpolicy/conditions"
	"github.com/celpolicy/celpolicy/engine"
	"github.com/celpolicy/celpolicy/internal/redact"
	"github.com/celpolicy/celpolicy/registry"
)

// Webhook headers.
const (
	// SignatureHeader carries "sha256=<hex>", the HMAC-SHA256 of the body
	// under the webhook's secret, when it has one.
	SignatureHeader = "X-Celpolicy-Signature"
	// DeliveryHeader identifies an event; a retried delivery repeats it,
	// so that a receiver can drop duplicates.
	DeliveryHeader = "X-Celpolicy-Delivery"
	// EventHeader names the kind of event: EventDecision.
	EventHeader = "X-Celpolicy-Event"
	// EventDecision is the event a notify action sends.
	EventDecision = "decision"
)

// Event is the JSON body a notify action POSTs.
type Event struct {
	Type     string            `json:"type"` // EventDecision
	Time     time.Time         `json:"time"`
	Policy   string            `json:"policy"`
	Image    *conditions.Image `json:"image"`
	Decision *engine.Decision  `json:"decision"`
}

// Notifier posts events to webhooks.
type Notifier struct {
	o     *options
	retry retrier
}

// NewNotifier returns the notify executor.
func NewNotifier(opts ...Option) (*Notifier, error) {
	o, err := newOptions(opts)
	if err != nil {
		return nil, err
	}
	return &Notifier{o: o, retry: retrier{retries: o.retries, clock: o.clock}}, nil
}

// Sign returns the X-Celpolicy-Signature value of body under secret, for
// receivers to compare (with hmac.Equal) against the header.
func Sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Execute posts the event of t to t.Action.Webhook: each attempt bounded
// by the webhook timeout, retried on 408, 429, 5xx, timeouts and
// connection errors. In a dry run nothing is sent.
func (n *Notifier) Execute(ctx context.Context, t Task) (Result, error) {
	res := Result{Outcome: Failed, DryRun: t.DryRun}
	if t.Action == nil || t.Action.Webhook == "" {
		return res, errors.New("notify: the task has no webhook")
	}
	url := t.Action.Webhook
	if t.DryRun {
		res.Outcome, res.Detail = Notified, "would POST the decision event"
		return res, nil
	}
	body, err := json.Marshal(Event{Type: EventDecision, Time: n.o.clock.Now().UTC(), Policy: t.Policy, Image: t.Image, Decision: t.Decision})
	if err != nil {
		return res, fmt.Errorf("notify: %w", err)
	}
	sum := sha256.Sum256(body)
	delivery := hex.EncodeToString(sum[:8])
	var secret []byte
	if n.o.secret != nil {
		secret = n.o.secret(url)
	}
	var status int
	attempts, err := n.retry.do(ctx, retryableWebhook, func(ctx context.Context) error {
		var err error
		status, err = n.post(ctx, url, body, delivery, secret)
		return err
	})
	if attempts > 1 {
		res.Attempts = attempts
	}
	// Webhook URLs often carry a token: logs and reports get them
	// without user information and query.
	shown := redact.URL(url)
	attrs := []slog.Attr{slog.String("image", imageRef(t.Image)), slog.String("policy", t.Policy),
		slog.String("webhook", shown), slog.String("delivery", delivery), slog.Int("attempts", attempts)}
	if err != nil {
		err = redact.Wrap(err, url)
		n.o.logger.LogAttrs(ctx, slog.LevelError, "notify", append(attrs, slog.String("error", err.Error()))...)
		return res, fmt.Errorf("notify %s: %w", shown, err)
	}
	n.o.logger.LogAttrs(ctx, slog.LevelInfo, "notify", append(attrs, slog.Int("status", status))...)
	res.Outcome, res.Detail = Notified, fmt.Sprintf("%s answered %d", shown, status)
	return res, nil
}

func (n *Notifier) post(ctx context.Context, url string, body []byte, delivery string, secret []byte) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, n.o.webhookTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "celpolicy/"+n.o.version)
	req.Header.Set(EventHeader, EventDecision)
	req.Header.Set(DeliveryHeader, delivery)
	if len(secret) > 0 {
		req.Header.Set(SignatureHeader, Sign(secret, body))
	}
	resp, err := n.o.httpClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp.StatusCode, nil
	}
	e := &webhookError{status: resp.StatusCode, body: string(bytes.TrimSpace(msg))}
	e.wait, e.hasWait = registry.RetryAfter(resp.Header.Get("Retry-After"), n.o.clock.Now())
	return resp.StatusCode, e
}

// webhookError is a webhook's answer other than 2xx.
type webhookError struct {
	status  int
	body    string
	wait    time.Duration
	hasWait bool
}

func (e *webhookError) Error() string {
	if e.body == "" {
		return fmt.Sprintf("answered %d %s", e.status, http.StatusText(e.status))
	}
	return fmt.Sprintf("answered %d %s: %s", e.status, http.StatusText(e.status), e.body)
}

func (e *webhookError) retryAfter() (time.Duration, bool) { return e.wait, e.hasWait }

func retryableWebhook(err error) bool {
	var we *webhookError
	if errors.As(err, &we) {
		return registry.RetryableStatus(we.status)
	}
	// An attempt's own timeout; the run's context is checked by the
	// retrier.
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	return connectionError(err)
}
