package engine

// APIVersion is the only policy file format version this engine reads.
const APIVersion = "celpolicy.dev/v1"

// Document kinds.
const (
	KindPolicy   = "Policy"
	KindRegistry = "Registry"
)

// Mode says whether a matched policy takes effect.
type Mode string

const (
	// ModeEnforce policies decide.
	ModeEnforce Mode = "enforce"
	// ModeAudit policies are evaluated and reported, never applied.
	ModeAudit Mode = "audit"
)

// FailurePolicy says what an evaluation error in a policy does.
type FailurePolicy string

const (
	// FailClosed: an error blocks the image at every target.
	FailClosed FailurePolicy = "fail"
	// FailOpen: an error is reported and the policy is treated as not
	// matching.
	FailOpen FailurePolicy = "ignore"
)

// Action types.
const (
	ActionReplicate = "replicate"
	ActionBlock     = "block"
	ActionNotify    = "notify"
	ActionDelete    = "delete"
)

// Bundle is what a set of policy files says, decoded and checked but not
// compiled.
type Bundle struct {
	Policies   []*Policy
	Registries []*Registry
	// Files read, in order, with their content hash folded into Revision.
	Files    []string
	Revision string
}

// Policy is a decoded `kind: Policy` document.
type Policy struct {
	Name        string
	Description string
	Labels      map[string]string
	Priority    int
	Mode        Mode
	Fallback    bool
	Failure     FailurePolicy
	Variables   []Variable
	// Match and Conditions: exactly one is set.
	Match      *Expr
	Conditions *Conditions
	Actions    []Action
	Schedule   *Text
	Sources    []Source
	// Pos is where the document's metadata.name stands.
	Pos Position
}

// Variable is a named expression; later variables may use earlier ones.
type Variable struct {
	Name       Text
	Expression Expr
}

// Conditions is the readable alternative to match: every `all` must hold,
// at least one `any` (when given) and no `none`.
type Conditions struct {
	All  []Condition
	Any  []Condition
	None []Condition
}

// Condition is one expression with the message that explains it.
type Condition struct {
	Expression Expr
	Message    string
}

// Action is what a matched policy asks for.
type Action struct {
	Type Text
	// Where selects targets (replicate, block); with To, both must hold.
	Where *Expr
	To    []Text
	// Repository and Tag compute the destination name (replicate).
	Repository *Expr
	Tag        *Expr
	// Reason explains a block.
	Reason *Expr
	// Webhook receives a notify action's event.
	Webhook *Text
	// Platforms filters an index when replicating ("os/arch[/variant]").
	Platforms []string
	// Referrers copies signatures and SBOMs along (replicate).
	Referrers bool
	// Scope of a delete: "tag" (default) or "manifest".
	Scope *Text
	Pos   Position
}

// Source is what a scheduled or `run` pass scans.
type Source struct {
	Registry     Text
	Repositories []string
	Tags         []string
}

// Registry is a decoded `kind: Registry` document: one target of the
// inventory.
type Registry struct {
	Name     string
	Labels   map[string]string
	Host     string
	Insecure bool
	CAFile   string
	Pos      Position
}

// Text is a string with the position it was read from.
type Text struct {
	Value string
	Pos   Position
}
