package engine

import (
	"bytes"
	"encoding/json"
	"gopkg.in/yaml.v3"
	"reflect"
	"strings"
)

//go:generate go run ./internal/schemagen -o ../docs/schema/policy.schema.json

// SchemaDraft is the JSON Schema dialect of Schema: draft-07, the one
// editors (VS Code's YAML extension, JetBrains IDEs) support best.
const SchemaDraft = "http://json-schema.org/draft-07/schema#"

// Schema returns the JSON Schema of one document of a policy file, a
// Policy or a Registry, generated from the types the decoder reads (their
// yaml and required tags), so that it cannot drift from what Load
// accepts. Editors use it for completion and checks while typing; Load
// still reports what a schema cannot say (CEL, cron, inventory names).
func Schema() ([]byte, error) {
	g := &schemaGen{defs: map[string]any{}}
	doc := g.object(reflect.TypeFor[rawDoc](), "rawDoc")
	doc["$schema"] = SchemaDraft
	doc["title"] = "celpolicy policy file document (" + APIVersion + ")"
	doc["description"] = "One YAML document of a celpolicy policy file: a Policy or a Registry of the target inventory. Files may hold several documents separated by ---."
	doc["allOf"] = []any{
		kindSpec(KindPolicy, g.ref(reflect.TypeFor[rawPolicySpec]())),
		kindSpec(KindRegistry, g.ref(reflect.TypeFor[rawRegistrySpec]())),
	}
	// A policy gives match or conditions, never both.
	ps := g.defs["PolicySpec"].(map[string]any)
	ps["oneOf"] = []any{
		map[string]any{"required": []string{"match"}, "not": map[string]any{"required": []string{"conditions"}}},
		map[string]any{"required": []string{"conditions"}, "not": map[string]any{"required": []string{"match"}}},
	}
	doc["definitions"] = g.defs
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func kindSpec(kind string, spec map[string]any) map[string]any {
	return map[string]any{
		"if":   map[string]any{"properties": map[string]any{"kind": map[string]any{"const": kind}}, "required": []string{"kind"}},
		"then": map[string]any{"properties": map[string]any{"spec": spec}},
	}
}

// schemaFields adds what the Go types cannot say: allowed values and
// descriptions, keyed by type name and yaml field name.
var schemaFields = map[string]map[string]any{
	"rawDoc.apiVersion":           {"const": APIVersion},
	"rawDoc.kind":                 {"enum": []string{KindPolicy, KindRegistry}},
	"rawDoc.spec":                 {"type": "object", "description": "The Policy or Registry specification."},
	"rawMetadata.name":            {"pattern": `^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$`, "maxLength": 253, "description": "Lower-case letters, digits, '-' and '.'; unique per kind."},
	"rawMetadata.labels":          {"description": "A Registry's labels are what where selectors read as target.labels."},
	"rawPolicySpec.priority":      {"description": "Higher first; ties by name. Default 0."},
	"rawPolicySpec.mode":          {"enum": []string{string(ModeEnforce), string(ModeAudit)}, "description": "enforce (default) decides; audit is evaluated and reported, never applied."},
	"rawPolicySpec.fallback":      {"description": "true: applies only when no other enforce policy matched."},
	"rawPolicySpec.failurePolicy": {"enum": []string{string(FailClosed), string(FailOpen)}, "description": "fail (default): an evaluation error blocks the image; ignore: it is reported and the policy does not match."},
	"rawPolicySpec.variables":     {"description": "Named CEL expressions, read as variables.<name>; later ones may use earlier ones."},
	"rawPolicySpec.match":         {"description": "CEL bool expression over image, now and variables. Give match or conditions."},
	"rawPolicySpec.conditions":    {"description": "Instead of match: every all holds, at least one any (when given), no none."},
	"rawPolicySpec.schedule":      {"description": "Cron schedule (five fields, or @daily, @every 1h) on which serve runs the policy."},
	"rawVariable.name":            {"pattern": `^[A-Za-z_][A-Za-z0-9_]*$`},
	"rawAction.type":              {"enum": []string{ActionReplicate, ActionBlock, ActionNotify, ActionDelete}},
	"rawAction.where":             {"description": "CEL bool expression over target (and image): which registries the action applies to. Omitted: all."},
	"rawAction.to":                {"description": "Inventory registry names; with where, both must hold."},
	"rawAction.repository":        {"description": "CEL string expression: the destination repository (replicate). Default: the image's."},
	"rawAction.tag":               {"description": "CEL string expression: the destination tag (replicate). Default: the image's."},
	"rawAction.reason":            {"description": "CEL string expression: why the image is blocked (block)."},
	"rawAction.webhook":           {"format": "uri", "description": "http or https URL that receives the event (notify)."},
	"rawAction.platforms":         {"description": "os/arch[/variant] platforms of an index to replicate."},
	"rawAction.scope":             {"enum": []string{"tag", "manifest"}, "description": "What a delete removes. Default: tag."},
	"rawSource.registry":          {"description": "Inventory name of the registry to scan."},
	"rawRegistrySpec.host":        {"description": "host[:port], without scheme or path."},
	"rawRegistrySpec.insecure":    {"description": "Plain HTTP, for local registries."},
	"rawCondition.message":        {"description": "Explains the condition in traces."},
	"rawCondition.expression":     {"description": "CEL bool expression over image, now and variables."},
	"rawVariable.expression":      {"description": "CEL expression over image, now and earlier variables."},
	"rawMetadata.description":     {"description": "What the policy is for."},
	"rawMetadata.annotations":     {"description": "Free-form notes for tools."},
	"rawRegistrySpec.caFile":      {"description": "PEM file of the CA that signs the registry's certificate."},
	"rawAction.referrers":         {"description": "Also copy signatures and SBOMs that refer to the image (replicate)."},
	"rawSource.repositories":      {"description": "Repository glob patterns (doublestar) to scan."},
	"rawSource.tags":              {"description": "Tag glob patterns to scan."},
	"rawPolicySpec.sources":       {"description": "What a scheduled or run pass scans."},
	"rawPolicySpec.actions":       {"description": "What a matched policy asks for; at least one."},
	"rawConditions.all":           {"description": "Every one must hold."},
	"rawConditions.any":           {"description": "At least one must hold, when given."},
	"rawConditions.none":          {"description": "None may hold."},
	"rawDoc.metadata":             {"description": "Name, description and labels of the document."},
}

type schemaGen struct {
	defs map[string]any
}

// ref returns a reference to the definition of struct type t, adding it.
func (g *schemaGen) ref(t reflect.Type) map[string]any {
	name := strings.TrimPrefix(t.Name(), "raw")
	name = strings.ToUpper(name[:1]) + name[1:]
	if _, ok := g.defs[name]; !ok {
		g.defs[name] = nil // a placeholder against recursion
		g.defs[name] = g.object(t, t.Name())
	}
	return map[string]any{"$ref": "#/definitions/" + name}
}

func (g *schemaGen) object(t reflect.Type, typeName string) map[string]any {
	props := map[string]any{}
	var required []string
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		if tag == "" || tag == "-" {
			continue
		}
		s := g.schemaOf(f.Type)
		for k, v := range schemaFields[typeName+"."+tag] {
			s[k] = v
		}
		props[tag] = s
		if f.Tag.Get("required") == "true" {
			required = append(required, tag)
		}
	}
	obj := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		obj["required"] = required
	}
	return obj
}

func (g *schemaGen) schemaOf(t reflect.Type) map[string]any {
	switch t {
	case reflect.TypeFor[Text]():
		return map[string]any{"type": "string"}
	case reflect.TypeFor[Expr]():
		// The decoder reads any scalar as an expression: match: true.
		return map[string]any{"type": []string{"string", "boolean"}}
	case reflect.TypeFor[*yaml.Node]():
		return map[string]any{}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return g.schemaOf(t.Elem())
	case reflect.Struct:
		return g.ref(t)
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Int:
		return map[string]any{"type": "integer"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Slice:
		return map[string]any{"type": "array", "items": g.schemaOf(t.Elem())}
	case reflect.Map:
		// Label values are strings to CEL; the decoder takes any scalar.
		return map[string]any{"type": "object", "additionalProperties": map[string]any{"type": []string{"string", "number", "boolean"}}}
	}
	return map[string]any{}
}
