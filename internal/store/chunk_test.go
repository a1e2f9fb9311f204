package store

import (
	"fmt"
	"testing"
)

func TestChunksUseFixedSizes(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 1, 3, 4, 5, 41, 64, 150, 1000} {
		s := make([]int, n)
		for i := range s {
			s[i] = i
		}
		var sizes []int
		next := 0
		for part := range chunks(s) {
			sizes = append(sizes, len(part))
			for _, v := range part {
				if v != next {
					t.Fatalf("n=%d: element %d where %d was expected: chunks must keep order", n, v, next)
				}
				next++
			}
		}
		if next != n {
			t.Fatalf("n=%d: chunks covered %d elements", n, next)
		}
		for _, size := range sizes {
			if size != 64 && size != 16 && size != 4 && size != 1 {
				t.Fatalf("n=%d: chunk sizes %v, want only 64, 16, 4 and 1", n, sizes)
			}
		}
		if got := fmt.Sprint(sizes); n == 150 && got != "[64 64 16 4 1 1]" {
			t.Fatalf("n=150: chunk sizes %s", got)
		}
	}
}
