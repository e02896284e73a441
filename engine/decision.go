package engine

// Verdict kinds of a target.
const (
	VerdictReplicate = "replicate"
	VerdictBlocked   = "blocked"
)

// Decision is what a PolicySet says about one image. Its JSON form is
// the stable output of `celpolicy eval -o json`: fields may be added,
// never renamed.
type Decision struct {
	Image ImageRef `json:"image"`
	// Revision of the policy set that decided.
	Revision string `json:"revision"`
	// Allowed is false when the image is blocked at every target (or at
	// the target asked about).
	Allowed bool `json:"allowed"`
	// Matched lists the matched policies in priority order, audit ones
	// included.
	Matched []MatchedPolicy `json:"matched"`
	// Targets holds a verdict per target registry a policy spoke about.
	Targets map[string]*Verdict `json:"targets"`
	// Actions are the notify and delete actions to carry out.
	Actions []PlannedAction `json:"actions"`
	// Conflicts between policies about the same target, and how they
	// were resolved.
	Conflicts []Conflict `json:"conflicts"`
	// Errors of policies that failed to evaluate.
	Errors []PolicyError `json:"errors"`
	// Audit holds what audit-mode policies would have decided.
	Audit []AuditVerdict `json:"audit"`
	// Trace explains each policy, filled when tracing is asked for.
	Trace []PolicyTrace `json:"trace"`
}

// ImageRef names the decided image.
type ImageRef struct {
	Reference string `json:"reference"`
	Digest    string `json:"digest,omitempty"`
}

// MatchedPolicy is one matched policy.
type MatchedPolicy struct {
	Policy   string `json:"policy"`
	Priority int    `json:"priority"`
	Mode     Mode   `json:"mode"`
	Fallback bool   `json:"fallback,omitempty"`
}

// Verdict is the decision for one target.
type Verdict struct {
	Verdict string `json:"verdict"`
	Policy  string `json:"policy"`
	// Destination is host/repository:tag (or @digest) for replicate.
	Destination string `json:"destination,omitempty"`
	// Reason says why, for blocked.
	Reason string `json:"reason,omitempty"`
	// Platforms and Referrers carry the replicate action's options.
	Platforms []string `json:"platforms,omitempty"`
	Referrers bool     `json:"referrers,omitempty"`
}

// PlannedAction is a notify or delete action of a matched policy.
type PlannedAction struct {
	Type    string `json:"type"`
	Policy  string `json:"policy"`
	Webhook string `json:"webhook,omitempty"`
	// Reference and Scope of a delete.
	Reference string `json:"reference,omitempty"`
	Scope     string `json:"scope,omitempty"`
}

// Conflict records two policies that disagreed about a target.
type Conflict struct {
	Target string `json:"target"`
	// Policy and Verdict won; Other and OtherVerdict lost.
	Policy       string `json:"policy"`
	Verdict      string `json:"verdict"`
	Other        string `json:"other"`
	OtherVerdict string `json:"otherVerdict"`
	// Rule says why the winner won.
	Rule string `json:"rule"`
}

// PolicyError is a policy that could not be evaluated.
type PolicyError struct {
	Policy string `json:"policy"`
	// Field is where it failed, e.g. "spec.match" or
	// "spec.actions[0].where" (with Target).
	Field   string `json:"field"`
	Target  string `json:"target,omitempty"`
	Message string `json:"message"`
	// Effect is what the failurePolicy made of it: "blocked" or "ignored".
	Effect string `json:"effect"`
}

// AuditVerdict is what an audit-mode policy would have decided.
type AuditVerdict struct {
	Policy string `json:"policy"`
	Target string `json:"target,omitempty"`
	Type   string `json:"type"`
	Verdict
}

// PolicyTrace explains one policy's evaluation.
type PolicyTrace struct {
	Policy   string `json:"policy"`
	Priority int    `json:"priority"`
	Mode     Mode   `json:"mode"`
	Fallback bool   `json:"fallback,omitempty"`
	Matched  bool   `json:"matched"`
	// Skipped says why the policy was not evaluated, e.g. a fallback when
	// another policy matched.
	Skipped    string      `json:"skipped,omitempty"`
	Error      string      `json:"error,omitempty"`
	Variables  []ExprTrace `json:"variables,omitempty"`
	Conditions []ExprTrace `json:"conditions,omitempty"`
	Actions    []ExprTrace `json:"actions,omitempty"`
}

// ExprTrace is one expression's result and the values of its parts.
type ExprTrace struct {
	// Name of a variable, or the condition kind (match, all, any, none),
	// or the action field (e.g. "actions[0].where").
	Name       string `json:"name"`
	Target     string `json:"target,omitempty"`
	Expression string `json:"expression"`
	Message    string `json:"message,omitempty"`
	Result     any    `json:"result"`
	Error      string `json:"error,omitempty"`
	// Values of sub-expressions, outermost first.
	Values []SubValue `json:"values,omitempty"`
}

// SubValue is a sub-expression and its value.
type SubValue struct {
	Expression string `json:"expression"`
	Value      any    `json:"value"`
}
