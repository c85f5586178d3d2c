"""What the editing command lines share."""


def join_list_values(argv, options):
    """Returns argv with "--opt -3,0,3" written "--opt=-3,0,3" for each list-valued option in
    `options`: argparse takes a value that starts with "-" and is not one plain number for an
    option, so "--alphas -3,0,3" would otherwise fail."""
    argv, out = list(argv), []
    while argv:
        arg = argv.pop(0)
        if arg in options and argv and argv[0].startswith("-") and not argv[0].startswith("--"):
            arg = f"{arg}={argv.pop(0)}"
        out.append(arg)
    return out
