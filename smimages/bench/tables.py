"""The benches' one table layout: a header, a rule, rows; the first column left-aligned, the rest
right-aligned (numbers), each as wide as its widest cell."""


def grid(header, lines):
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]

    def fmt_row(row):
        return "  ".join(cell.ljust(widths[0]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row))

    return "\n".join([fmt_row(header), fmt_row(["-" * w for w in widths]), *map(fmt_row, lines)])
