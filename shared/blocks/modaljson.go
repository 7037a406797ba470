package blocks

import (
	"bytes"
	"encoding/json"
	"slices"
	"sync"
)

// The order modal is the same for every /coffee but for its
// private_metadata, and encoding it was a visible share of the ingress's CPU.
// So each pre-fill's modal is encoded once with a placeholder, and requests
// splice the metadata in.
const metadataPlaceholder = "{{coffeebuddy:private_metadata}}"

var (
	placeholderJSON = []byte(`"` + metadataPlaceholder + `"`)
	modalTemplates  sync.Map // Prefill -> [2][]byte: JSON before and after the metadata
)

// OrderModalJSON returns json.Marshal(OrderModal(meta, pre)), cheaply.
func OrderModalJSON(meta OrderMetadata, pre Prefill) []byte {
	known := (pre.Drink == "" || slices.Contains(Drinks, pre.Drink)) && (pre.Size == "" || slices.Contains(Sizes, pre.Size)) &&
		pre.Customizations == ""
	if !known { // keep the cache bounded: valid drink and size pre-fills only, no free text
		b, _ := json.Marshal(OrderModal(meta, pre))
		return b
	}
	var parts [2][]byte
	if v, ok := modalTemplates.Load(pre); ok {
		parts = v.([2][]byte)
	} else {
		view := OrderModal(meta, pre)
		view.PrivateMetadata = metadataPlaceholder
		b, _ := json.Marshal(view)
		before, after, _ := bytes.Cut(b, placeholderJSON)
		parts = [2][]byte{before, after}
		modalTemplates.Store(pre, parts)
	}
	md, _ := json.Marshal(meta)
	mdJSON, _ := json.Marshal(string(md))
	out := make([]byte, 0, len(parts[0])+len(mdJSON)+len(parts[1]))
	return append(append(append(out, parts[0]...), mdJSON...), parts[1]...)
}
