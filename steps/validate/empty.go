package validate

import (
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

func emptyArray(t arrow.DataType) arrow.Array {
	b := array.NewBuilder(memory.DefaultAllocator, t)
	defer b.Release()
	return b.NewArray()
}

func arrowRecord(sc *arrow.Schema, cols []arrow.Array) arrow.RecordBatch {
	return array.NewRecordBatch(sc, cols, 0)
}
