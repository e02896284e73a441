package engine_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/celpolicy/celpolicy/engine"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

const committedSchema = "../docs/schema/policy.schema.json"

func TestSchemaIsUpToDate(t *testing.T) {
	want, err := engine.Schema()
	require.NoError(t, err)
	got, err := os.ReadFile(committedSchema)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(want, got),
		"%s is stale: the policy file types changed; run `go generate ./engine` and commit the result", committedSchema)
}

func TestSchemaDescribesTheFormat(t *testing.T) {
	data, err := engine.Schema()
	require.NoError(t, err)
	var s map[string]any
	require.NoError(t, json.Unmarshal(data, &s))
	assert.Equal(t, engine.SchemaDraft, s["$schema"])
	assert.Equal(t, []any{"apiVersion", "kind", "metadata", "spec"}, s["required"])
	defs := s["definitions"].(map[string]any)
	for _, name := range []string{"Metadata", "PolicySpec", "RegistrySpec", "Action", "Variable", "Conditions", "Condition", "Source"} {
		assert.Contains(t, defs, name)
	}
	ps := defs["PolicySpec"].(map[string]any)
	assert.Equal(t, []any{"actions"}, ps["required"])
	assert.Equal(t, false, ps["additionalProperties"])
	mode := ps["properties"].(map[string]any)["mode"].(map[string]any)
	assert.Equal(t, []any{"enforce", "audit"}, mode["enum"])
	action := defs["Action"].(map[string]any)["properties"].(map[string]any)
	assert.Equal(t, []any{"replicate", "block", "notify", "delete"}, action["type"].(map[string]any)["enum"])
}

// TestExamplesFollowSchema checks every document of the example policies
// against the schema's properties, required fields, enums and scalar
// types, so that editors do not flag files Load accepts.
func TestExamplesFollowSchema(t *testing.T) {
	data, err := engine.Schema()
	require.NoError(t, err)
	var s map[string]any
	require.NoError(t, json.Unmarshal(data, &s))
	files, err := filepath.Glob("../examples/policies/*.yaml")
	require.NoError(t, err)
	for _, f := range files {
		if !engine.IsPolicyFile(f) {
			continue
		}
		src, err := os.ReadFile(f)
		require.NoError(t, err)
		dec := yaml.NewDecoder(bytes.NewReader(src))
		for i := 0; ; i++ {
			var doc any
			if err := dec.Decode(&doc); err != nil {
				break
			}
			var problems []string
			checkSchema(s, s, doc, fmt.Sprintf("%s#%d", f, i), &problems)
			assert.Empty(t, problems)
		}
	}
	var problems []string
	checkSchema(s, s, map[string]any{"apiVersion": "celpolicy.dev/v1", "kind": "Policy", "metadata": map[string]any{"name": "x"},
		"spec": map[string]any{"match": "true", "priorty": 1, "mode": "loud", "actions": []any{map[string]any{"type": "copy"}}}}, "bad", &problems)
	assert.ElementsMatch(t, []string{
		`bad.spec: unknown property "priorty"`,
		`bad.spec.mode: "loud" is not one of [enforce audit]`,
		`bad.spec.actions[0].type: "copy" is not one of [replicate block notify delete]`,
	}, problems)
}

// checkSchema is a small validator for the keywords the generated schema
// uses: $ref, properties, additionalProperties, required, enum, const,
// type, items and the kind-dependent allOf if/then.
func checkSchema(root, s map[string]any, v any, path string, problems *[]string) {
	if ref, ok := s["$ref"].(string); ok {
		def := root["definitions"].(map[string]any)[strings.TrimPrefix(ref, "#/definitions/")]
		checkSchema(root, def.(map[string]any), v, path, problems)
		return
	}
	fail := func(format string, args ...any) {
		*problems = append(*problems, path+": "+fmt.Sprintf(format, args...))
	}
	if enum, ok := s["enum"].([]any); ok && !slices.Contains(enum, v) {
		fail("%q is not one of %v", v, enum)
	}
	if c, ok := s["const"]; ok && c != v {
		fail("%v is not %v", v, c)
	}
	if typ, ok := s["type"]; ok {
		var types []string
		switch x := typ.(type) {
		case string:
			types = []string{x}
		case []any:
			for _, y := range x {
				types = append(types, y.(string))
			}
		}
		if !slices.Contains(types, jsonType(v)) {
			fail("%s is not of type %v", jsonType(v), types)
		}
	}
	switch x := v.(type) {
	case map[string]any:
		props, _ := s["properties"].(map[string]any)
		for _, r := range anyList(s["required"]) {
			if _, ok := x[r.(string)]; !ok {
				fail("missing required %q", r)
			}
		}
		for k, val := range x {
			p, ok := props[k].(map[string]any)
			if !ok {
				if ap, ok := s["additionalProperties"].(map[string]any); ok {
					checkSchema(root, ap, val, path+"."+k, problems)
				} else if props != nil {
					*problems = append(*problems, fmt.Sprintf("%s: unknown property %q", path, k))
				}
				continue
			}
			checkSchema(root, p, val, path+"."+k, problems)
		}
		for _, sub := range anyList(s["allOf"]) {
			cond := sub.(map[string]any)
			kind := cond["if"].(map[string]any)["properties"].(map[string]any)["kind"].(map[string]any)["const"]
			if x["kind"] == kind {
				then := cond["then"].(map[string]any)["properties"].(map[string]any)
				checkSchema(root, then["spec"].(map[string]any), x["spec"], path+".spec", problems)
			}
		}
	case []any:
		if items, ok := s["items"].(map[string]any); ok {
			for i, el := range x {
				checkSchema(root, items, el, fmt.Sprintf("%s[%d]", path, i), problems)
			}
		}
	}
}

func anyList(v any) []any {
	l, _ := v.([]any)
	return l
}

func jsonType(v any) string {
	switch v.(type) {
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case string:
		return "string"
	case bool:
		return "boolean"
	case int, float64:
		if _, ok := v.(int); ok {
			return "integer"
		}
		return "number"
	}
	return "null"
}
