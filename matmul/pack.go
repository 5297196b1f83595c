package matmul

// packPanels copies a block of an operand into the micro-panel format the micro-kernels
// read: cross elements [i0, i0+count) by contracting elements [k0, k0+kc) of the operand
// at batch offset base, cut into panels of width cross elements. Panel p holds, for each
// contracting step k, the width values of cross elements i0+p*width ... consecutively:
//
//	dst[p*kc*width + k*width + r] = element(i0 + p*width + r, k0 + k)
//
// Cross elements past count (the last panel's padding) are zero, so the micro-kernel can
// always compute whole tiles.
//
// Element (i, k) is data[base + l.cross[i] + l.contracting[k]]. Three cases:
//   - contracting stride 1 (the operand is row-major in the contracting axis, as x[N, in]
//     or a weight [out, in] in a dense layer): each cross element's run of kc values is
//     contiguous and is scattered with stride width;
//   - cross stride 1 (the operand is contracting-major, as in weight gradients): for each k
//     the panel's width values are contiguous and copied as a block;
//   - anything else (several non-adjacent axes per group): a gather through the tables.
func packPanels(dst, data []float32, l *layout, base, i0, count, k0, kc, width int) {
	panels := (count + width - 1) / width
	for p := range panels {
		panel := dst[p*kc*width : (p+1)*kc*width]
		first := i0 + p*width
		rows := min(width, i0+count-first)
		switch {
		case l.contractingStride == 1 && rows == width:
			packRows(panel, data, base+k0, l.cross[first:first+width], kc, width)
		case l.contractingStride == 1:
			for r := range rows {
				src := data[base+l.cross[first+r]+k0:]
				src = src[:kc]
				for k, v := range src {
					panel[k*width+r] = v
				}
			}
		case l.crossStride == 1:
			contracting := l.contracting[k0 : k0+kc]
			off := base + l.cross[first]
			for k, c := range contracting {
				copy(panel[k*width:k*width+rows], data[off+c:off+c+rows])
			}
		default:
			cross := l.cross[first : first+rows]
			contracting := l.contracting[k0 : k0+kc]
			for r, c := range cross {
				for k, ck := range contracting {
					panel[k*width+r] = data[base+c+ck]
				}
			}
		}
		if rows < width {
			for k := range kc {
				clear(panel[k*width+rows : (k+1)*width])
			}
		}
	}
}

// packRows packs a full panel of width rows that are contiguous in the contracting axis
// (row r starts at data[base+rowOffsets[r]]): panel[k*width+r] = row r's element k. It
// goes over k in the outer loop, so that the stores are sequential, and reads the rows in
// blocks of 8 contracting steps held in a small buffer, so that each row is read
// sequentially too.
func packRows(panel, data []float32, base int, rowOffsets []int, kc, width int) {
	const block = 8
	var rows [32][]float32
	for r := range width {
		rows[r] = data[base+rowOffsets[r] : base+rowOffsets[r]+kc]
	}
	k := 0
	for ; k+block <= kc; k += block {
		dst := panel[k*width : (k+block)*width]
		for r := range width {
			src := rows[r][k : k+block]
			dst[r] = src[0]
			dst[width+r] = src[1]
			dst[2*width+r] = src[2]
			dst[3*width+r] = src[3]
			dst[4*width+r] = src[4]
			dst[5*width+r] = src[5]
			dst[6*width+r] = src[6]
			dst[7*width+r] = src[7]
		}
	}
	for ; k < kc; k++ {
		dst := panel[k*width : (k+1)*width]
		for r := range width {
			dst[r] = rows[r][k]
		}
	}
}
