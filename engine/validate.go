package engine

import (
	"fmt"
	"net/url"
	"reflect"
	"slices"
	"strings"

	"github.com/robfig/cron/v3"
)

func reflectValue(p any) reflect.Value { return reflect.ValueOf(p).Elem() }

func (d *document) registry(errs *ErrorList) *Registry {
	var spec rawRegistrySpec
	before := len(*errs)
	d.dec.decode(d.raw.SpecKey, d.raw.Spec, reflectValue(&spec), "spec")
	r := &Registry{
		Name:     d.raw.Metadata.Name.Value,
		Labels:   d.raw.Metadata.Labels,
		Host:     spec.Host.Value,
		Insecure: spec.Insecure,
		CAFile:   spec.CAFile,
		Pos:      d.raw.Metadata.Name.Pos,
	}
	if spec.Host.Value != "" {
		if msg := checkHost(spec.Host.Value); msg != "" {
			errs.add(spec.Host.Pos, "spec.host", "%s", msg)
		}
	}
	if len(*errs) > before {
		return nil
	}
	return r
}

func checkHost(h string) string {
	if strings.Contains(h, "://") || strings.Contains(h, "/") {
		return fmt.Sprintf("invalid host %q: write host[:port], without scheme or path", h)
	}
	u, err := url.Parse("//" + h)
	if err != nil || u.Host != h || u.Hostname() == "" {
		return fmt.Sprintf("invalid host %q: write host[:port]", h)
	}
	return ""
}

// ParseSchedule parses a policy's schedule: five crontab fields, or a
// descriptor such as @daily or @every 1h, optionally prefixed with
// CRON_TZ=<zone>, as robfig/cron's standard parser reads them.
func ParseSchedule(spec string) (cron.Schedule, error) {
	return cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor).Parse(spec)
}

func (d *document) policy(inventory map[string]*Registry, errs *ErrorList) *Policy {
	var spec rawPolicySpec
	d.dec.decode(d.raw.SpecKey, d.raw.Spec, reflectValue(&spec), "spec")
	p := &Policy{
		Name:        d.raw.Metadata.Name.Value,
		Description: d.raw.Metadata.Description,
		Labels:      d.raw.Metadata.Labels,
		Mode:        ModeEnforce,
		Fallback:    spec.Fallback,
		Failure:     FailClosed,
		Match:       spec.Match,
		Schedule:    spec.Schedule,
		Pos:         d.raw.Metadata.Name.Pos,
	}
	if spec.Priority != nil {
		p.Priority = *spec.Priority
	}
	if spec.Mode != nil {
		switch m := Mode(spec.Mode.Value); m {
		case ModeEnforce, ModeAudit:
			p.Mode = m
		default:
			errs.add(spec.Mode.Pos, "spec.mode", "unknown mode %q (want enforce or audit)", spec.Mode.Value)
		}
	}
	if spec.FailurePolicy != nil {
		switch f := FailurePolicy(spec.FailurePolicy.Value); f {
		case FailClosed, FailOpen:
			p.Failure = f
		default:
			errs.add(spec.FailurePolicy.Pos, "spec.failurePolicy", "unknown failurePolicy %q (want fail or ignore)", spec.FailurePolicy.Value)
		}
	}
	seenVar := map[string]Position{}
	for i, v := range spec.Variables {
		field := fmt.Sprintf("spec.variables[%d].name", i)
		if v.Name.Value == "" {
			continue // reported by the decoder
		}
		if first, dup := seenVar[v.Name.Value]; dup {
			errs.add(v.Name.Pos, field, "variable %q is already defined at %s", v.Name.Value, first)
			continue
		}
		if !isIdentifier(v.Name.Value) {
			errs.add(v.Name.Pos, field, "variable name %q must be an identifier (letters, digits and _, not starting with a digit), so that expressions can say variables.%s", v.Name.Value, v.Name.Value)
		}
		seenVar[v.Name.Value] = v.Name.Pos
		p.Variables = append(p.Variables, Variable{Name: v.Name, Expression: v.Expression})
	}
	switch {
	case spec.Match != nil && spec.Conditions != nil:
		errs.add(spec.Match.Pos, "spec.match", "give either match or conditions, not both")
	case spec.Match == nil && spec.Conditions == nil:
		errs.add(spec.Pos, "spec", "missing required field \"match\" (or \"conditions\"); to match every image write match: \"true\"")
	case spec.Conditions != nil:
		c := spec.Conditions
		if len(c.All)+len(c.Any)+len(c.None) == 0 {
			errs.add(c.Pos, "spec.conditions", "conditions needs at least one of all, any or none")
		}
		conv := func(rs []rawCondition) []Condition {
			out := make([]Condition, len(rs))
			for i, r := range rs {
				out[i] = Condition{Expression: r.Expression, Message: r.Message}
			}
			return out
		}
		p.Conditions = &Conditions{All: conv(c.All), Any: conv(c.Any), None: conv(c.None)}
	}
	if spec.Actions != nil && len(spec.Actions) == 0 {
		errs.add(spec.Pos, "spec.actions", "a policy needs at least one action")
	}
	for i, a := range spec.Actions {
		p.Actions = append(p.Actions, checkAction(a, fmt.Sprintf("spec.actions[%d]", i), inventory, errs))
	}
	if s := spec.Schedule; s != nil {
		if _, err := ParseSchedule(s.Value); err != nil {
			errs.add(s.Pos, "spec.schedule", "invalid schedule %q: %v (write five cron fields, e.g. \"0 */6 * * *\", or @daily, @every 1h)", s.Value, err)
		}
	}
	for i, s := range spec.Sources {
		if s.Registry.Value != "" {
			if _, ok := inventory[s.Registry.Value]; !ok {
				errs.add(s.Registry.Pos, fmt.Sprintf("spec.sources[%d].registry", i), "unknown registry %q%s", s.Registry.Value, inventoryHint(inventory))
			}
		}
		p.Sources = append(p.Sources, Source{Registry: s.Registry, Repositories: s.Repositories, Tags: s.Tags})
	}
	// A policy with problems is still returned, so that Compile reports
	// its CEL errors too; Load never uses a set that had any problem.
	return p
}

func inventoryHint(inventory map[string]*Registry) string {
	if len(inventory) == 0 {
		return ": no Registry documents are loaded"
	}
	names := make([]string, 0, len(inventory))
	for n := range inventory {
		names = append(names, n)
	}
	slices.Sort(names)
	return " (known registries: " + strings.Join(names, ", ") + ")"
}

// actionFields lists, per action type, the optional fields that apply.
var actionFields = map[string][]string{
	ActionReplicate: {"where", "to", "repository", "tag", "platforms", "referrers"},
	ActionBlock:     {"where", "to", "reason"},
	ActionNotify:    {"webhook"},
	ActionDelete:    {"scope"},
}

func checkAction(a rawAction, path string, inventory map[string]*Registry, errs *ErrorList) Action {
	out := Action{Type: a.Type, Where: a.Where, To: a.To, Repository: a.Repository, Tag: a.Tag,
		Reason: a.Reason, Webhook: a.Webhook, Platforms: a.Platforms, Referrers: a.Referrers, Scope: a.Scope, Pos: a.Pos}
	allowed, known := actionFields[a.Type.Value]
	if !known {
		if a.Type.Value != "" {
			errs.add(a.Type.Pos, path+".type", "unknown action type %q (want replicate, block, notify or delete)", a.Type.Value)
		}
		return out
	}
	given := map[string]Position{}
	note := func(name string, present bool, pos Position) {
		if present {
			given[name] = pos
		}
	}
	pos := func(e *Expr) Position {
		if e == nil {
			return Position{}
		}
		return e.Pos
	}
	note("where", a.Where != nil, pos(a.Where))
	if len(a.To) > 0 {
		note("to", true, a.To[0].Pos)
	}
	note("repository", a.Repository != nil, pos(a.Repository))
	note("tag", a.Tag != nil, pos(a.Tag))
	note("reason", a.Reason != nil, pos(a.Reason))
	if a.Webhook != nil {
		note("webhook", true, a.Webhook.Pos)
	}
	note("platforms", len(a.Platforms) > 0, a.Pos)
	note("referrers", a.Referrers, a.Pos)
	if a.Scope != nil {
		note("scope", true, a.Scope.Pos)
	}
	for name, p := range given {
		if !slices.Contains(allowed, name) {
			errs.add(p, path+"."+name, "field %q does not apply to a %s action", name, a.Type.Value)
		}
	}
	for i, t := range a.To {
		if _, ok := inventory[t.Value]; !ok {
			errs.add(t.Pos, fmt.Sprintf("%s.to[%d]", path, i), "unknown registry %q%s", t.Value, inventoryHint(inventory))
		}
	}
	switch a.Type.Value {
	case ActionNotify:
		if a.Webhook == nil {
			errs.add(a.Pos, path+".webhook", "a notify action needs a webhook URL")
		} else if u, err := url.Parse(a.Webhook.Value); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs.add(a.Webhook.Pos, path+".webhook", "invalid webhook %q: want an http or https URL", a.Webhook.Value)
		}
	case ActionDelete:
		if a.Scope != nil && a.Scope.Value != "tag" && a.Scope.Value != "manifest" {
			errs.add(a.Scope.Pos, path+".scope", "unknown delete scope %q (want tag or manifest)", a.Scope.Value)
		}
	}
	for i, pl := range a.Platforms {
		if n := strings.Count(pl, "/"); n < 1 || n > 2 || strings.Contains(pl, "//") || strings.HasSuffix(pl, "/") {
			errs.add(a.Pos, fmt.Sprintf("%s.platforms[%d]", path, i), "invalid platform %q: want os/arch or os/arch/variant", pl)
		}
	}
	return out
}

func isIdentifier(s string) bool {
	for i, r := range s {
		ok := r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || (i > 0 && r >= '0' && r <= '9')
		if !ok {
			return false
		}
	}
	return s != ""
}
