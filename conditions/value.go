package conditions

import (
	"fmt"
	"time"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
)

// ToJSON converts a CEL value to a value encoding/json renders the way a
// user reads it: timestamps as RFC 3339, durations as Go durations
// ("2160h0m0s"), errors as {"error": message}, optional values as their
// content or null.
func ToJSON(v ref.Val) any {
	switch x := v.(type) {
	case nil:
		return nil
	case types.Bool, types.Int, types.Uint, types.Double, types.String:
		return x.Value()
	case types.Null:
		return nil
	case types.Bytes:
		return []byte(x)
	case types.Timestamp:
		return x.Time.UTC().Format(time.RFC3339Nano)
	case types.Duration:
		return x.Duration.String()
	case *types.Err:
		return map[string]string{"error": x.String()}
	case *types.Optional:
		if !x.HasValue() {
			return nil
		}
		return ToJSON(x.GetValue())
	case Semver:
		return x.Original()
	case traits.Mapper:
		out := map[string]any{}
		for it := x.Iterator(); it.HasNext() == types.True; {
			k := it.Next()
			out[toKey(k)] = ToJSON(x.Get(k))
		}
		return out
	case traits.Lister:
		out := []any{}
		for it := x.Iterator(); it.HasNext() == types.True; {
			out = append(out, ToJSON(it.Next()))
		}
		return out
	case ref.Type:
		return x.TypeName()
	}
	return v.Value()
}

func toKey(k ref.Val) string {
	if s, ok := k.(types.String); ok {
		return string(s)
	}
	if s, ok := k.ConvertToType(types.StringType).(types.String); ok {
		return string(s)
	}
	return fmt.Sprint(k.Value())
}
