"""Error handling: every user mistake is one located `CnncError`, and a malformed file never crashes the CLI.

The first half is a table — error cases are data. Each row is a small network file, the error class it
must raise, where (`line:col`, 1-based), a piece of the message, and the text that must start at that
spot, so a row checks that the caret really sits on the offending token or key. Rows marked xfail
(strict) are known bugs: the row states the behaviour wanted; the reason says what happens today.
"""
from __future__ import annotations

import random
import re
import textwrap

import pytest

from cnnc.compiler import build
from cnnc.compiler import errors as compiler_errors
from cnnc.dsl import document, source
from cnnc.dsl import errors as dsl_errors
from cnnc.errors import CnncError, MultipleErrors

HEAD = "network: t\ninput: [3, 32, 32]\n"  # lines 1-2 of most snippets; their own text starts on line 3


def net(body: str) -> str:
    """HEAD followed by `body` (dedented), so that the body's first line is line 3."""
    return HEAD + textwrap.dedent(body).lstrip("\n")


def case(name, text, kind, where, says, at=None, trace=None, bug=None):
    """One row. kind: an error class name from cnnc.dsl.errors or cnnc.compiler.errors ("A|B" accepts either);
    where: "line:col"; says: a substring of the message; at: the text found at line:col in the file;
    trace: a substring of the "expanded from:" part; bug: the xfail reason for a known bug."""
    marks = [pytest.mark.xfail(reason=bug, strict=True)] if bug else []
    return pytest.param(text, kind, where, says, at, trace, id=name, marks=marks)


CBR = "blocks:\n  cbr(filters, kernel, stride=1): [conv(filters, kernel, stride=stride), relu]\nlayers:\n"

CASES = [
    # ---- unknown names and calls --------------------------------------------------------------
    case("unknown_op_suggests_conv", net("""
        layers:
          - conv2d(64, 3x3)
        """), "ResolveError", "4:5", "unknown op or block `conv2d` (did you mean `conv`?)", at="conv2d"),
    case("unknown_op_suggests_relu", net("""
        layers:
          - reluu
        """), "ResolveError", "4:5", "`reluu` (did you mean `relu`?)", at="reluu"),
    case("misspelled_op_in_a_flow_list_suggests_maxpool", net("""
        layers: [conv(8, 3x3), maxpol(2x2)]
        """), "ResolveError", "3:24", "`maxpol` (did you mean `maxpool`?)", at="maxpol"),
    case("unknown_block_suggests_a_defined_block", net("""
        blocks:
          inception_a(c): [conv(c, 1x1)]
        layers:
          - inception_b(64)
        """), "ResolveError", "6:5", "`inception_b` (did you mean `inception_a`?)", at="inception_b"),
    case("unknown_op_inside_a_block_names_the_call_site", net("""
        blocks:
          tower(f): [cnv(f, 3x3), relu]
        layers:
          - t: tower(8)
        """), "ResolveError", "4:14", "`cnv` (did you mean `conv`?)", at="cnv",
         trace="t: `tower(8)` at net.yaml:6:8"),
    case("unknown_keyword_of_an_op_suggests_the_closest_argument", net("""
        layers:
          - conv(64, 3x3, strid=2)
        """), "ResolveError", "4:19", "(did you mean `stride`?)", at="strid"),

    # ---- op arguments -------------------------------------------------------------------------
    case("symbol_where_an_op_wants_a_kernel", net("""
        layers:
          - conv(64, same)
        """), "ResolveError", "4:14", "`conv` argument `kernel` must be a size", at="same"),
    case("float_where_an_op_wants_an_integer", net("""
        layers:
          - conv(1.5, 3x3)
        """), "ResolveError", "4:10", "`conv` argument `filters` must be an integer, got `1.5` (float)",
         at="1.5"),
    case("symbol_where_an_op_wants_a_stride_points_at_the_keyword", net("""
        layers:
          - conv(64, 3x3, stride=same)
        """), "ResolveError", "4:19", "`conv` argument `stride` must be a size", at="stride=same"),
    case("missing_required_op_argument", net("""
        layers:
          - conv(64)
        """), "ResolveError", "4:5", "`conv` needs `kernel`", at="conv(64)"),
    case("too_many_positional_op_arguments", net("""
        layers:
          - maxpool(3x3, 1, same, true, 5)
        """), "ResolveError", "4:5", "`maxpool` takes at most 4 positional arguments", at="maxpool("),
    case("same_keyword_given_twice", net("""
        layers:
          - conv(64, 3x3, bias=true, bias=false)
        """), "ResolveError", "4:30", "argument `bias` given twice", at="bias=false"),
    case("dropout_rate_out_of_range", net("""
        layers:
          - dropout(rate=1.5)
        """), "ResolveError", "4:13", "must be a rate in [0, 1), got 1.5", at="rate"),

    # ---- blocks -------------------------------------------------------------------------------
    case("block_calling_itself", net("""
        blocks:
          b: [conv(8, 3x3), b]
        layers:
          - b
        """), "ResolveError", "4:21", "block `b` calls itself (b -> b)", at="b]",
         trace="b: `b` at net.yaml:6:5"),
    case("blocks_calling_each_other", net("""
        blocks:
          a: [conv(8, 3x3), b]
          b: [relu, a]
        layers:
          - a
        """), "ResolveError", "5:13", "calls itself (a -> b -> a)", at="a]",
         trace="a/b: `b` at net.yaml:4:21"),
    case("missing_block_parameter", net(CBR + "  - cbr(64)\n"), "ResolveError", "6:5",
         "block `cbr` needs parameter `kernel`", at="cbr(64)"),
    case("unknown_block_keyword_suggests_the_parameter", net(CBR + "  - cbr(64, 3x3, strid=2)\n"), "ResolveError",
         "6:18", "block `cbr` has no parameter `strid` (did you mean `stride`?)", at="strid"),
    case("too_many_block_arguments", net(CBR + "  - cbr(64, 3x3, 1, 2)\n"), "ResolveError", "6:21",
         "takes 3 arguments, got 4", at="2)"),
    case("block_parameter_given_by_position_and_keyword", net(CBR + "  - cbr(64, 3x3, filters=2)\n"), "ResolveError",
         "6:18", "parameter `filters` given twice", at="filters=2"),
    case("kernel_passed_to_an_int_block_parameter_by_keyword", net("""
        blocks:
          cbr(int f): [conv(f, 3x3), relu]
        layers:
          - cbr(f=3x3)
        """), "ResolveError", "6:9", "parameter `f` must be an integer, got `3x3` (kernel)", at="f=3x3"),
    case("kernel_passed_to_an_int_block_parameter_by_position", net("""
        blocks:
          cbr(int f): [conv(f, 3x3), relu]
        layers:
          - cbr(3x3)
        """), "ResolveError", "6:9", "parameter `f` must be an integer, got `3x3` (kernel)", at="3x3"),
    case("unknown_parameter_type_suggests_int", net("""
        blocks:
          cbr(integer f): [conv(f, 3x3)]
        layers:
          - cbr(2)
        """), "ResolveError", "4:7", "unknown type `integer` (did you mean `int`?)", at="integer f"),
    case("block_signature_that_does_not_parse", net("""
        blocks:
          cbr(f,: [relu]
        layers:
          - relu
        """), "ExprError", "4:9", "cannot read `cbr(f,` as a block signature", at=":"),
    case("block_defined_twice", net("""
        blocks:
          b(f): [conv(f, 3x3)]
          b(g): [relu]
        layers:
          - b(1)
        """), "SchemaError|ResolveError", "5:3", "`b`", at="b(g)"),
    case("block_parameter_declared_twice", net("""
        blocks:
          b(f, f): [conv(f, 3x3)]
        layers:
          - b(1, 2)
        """), "ExprError|SchemaError|ResolveError", "4:8", "`f`", at="f)"),

    # ---- repeats --------------------------------------------------------------------------------
    case("repeat_count_negative", net("""
        layers:
          - relu x -1
        """), "ResolveError", "4:12", "got `-1` (int)", at="-1"),
    case("repeat_count_fractional", net("""
        layers:
          - relu x 1.5
        """), "ResolveError", "4:12", "got `1.5` (float)", at="1.5"),
    case("repeat_count_expression_below_zero", net("""
        layers:
          - conv(8, 3x3) x 2 - 3
        """), "ResolveError", "4:20", "got `-1` (int)", at="2 - 3"),
    case("repeat_count_zero_leaving_a_branch_list_empty", net("""
        layers:
          - concat: [relu x 0]
        """), "ResolveError", "4:5", "`concat` needs at least one branch", at="concat"),
    case("repeat_count_beyond_the_limit", net("""
        layers:
          - relu x 100000
        """), "ResolveError", "4:12", "from 0 to 10,000, got `100000`", at="100000"),

    # ---- expressions ----------------------------------------------------------------------------
    case("float_reaching_an_integer_argument_names_the_rounding_functions", net("""
        layers:
          - conv(32 * 1.1, 3x3)
        """), "ResolveError", "4:10", "got `35.2` (float); a float becomes an integer only through round()",
        at="32 * 1.1"),
    case("unknown_function_suggests_one", net("""
        layers:
          - conv(make_divisble(40, 8), 3x3)
        """), "ExprError", "4:10", "unknown function `make_divisble` (did you mean `make_divisible`?)",
        at="make_divisble"),
    case("condition_that_is_not_a_boolean", net("""
        layers:
          - if: in_channels * 2
            then: relu
        """), "ResolveError", "4:9", "a condition must be `true` or `false`, got `6` (int)", at="in_channels"),
    case("condition_with_an_unknown_name", net("""
        layers:
          - if: strde == 1
            then: relu
        """), "ExprError", "4:9", "unknown name `strde`", at="strde"),
    case("conditional_without_then", net("""
        layers:
          - if: true
            else: relu
        """), "SchemaError", "4:5", "missing key `then`", at="if"),
    case("index_out_of_range", net("""
        constants:
          widths: [16, 32]
        layers:
          - conv(widths[2], 3x3)
        """), "ExprError", "6:17", "index 2 is out of range for a list of 2 items", at="2]"),
    case("product_of_shapes_that_do_not_broadcast", net("""
        layers:
          - mul: {a: identity, b: [globalavgpool(keepdims=true), conv(4, 1x1)]}
        """), "ShapeError", "4:5", "axis 0 differs ([3, 32, 32], [4, 1, 1])", at="mul"),
    case("variant_setting_an_undeclared_parameter", net("""
        parameters: {width: 1.0}
        variants:
          wide: {widht: 2.0}
        layers:
          - relu
        """), "SchemaError", "5:10", "variant `wide` sets `widht`, which is not a parameter (did you mean `width`?)",
        at="widht", bug=None),
    case("division_by_zero", net("""
        layers:
          - conv(64 // 0, 3x3)
        """), "ExprError", "4:10", "division by zero in `//`", at="64 // 0"),
    case("division_by_zero_in_a_parameter_default", net("""
        blocks:
          b(f, g=1//0): [conv(f, 3x3)]
        layers:
          - b(1)
        """), "ExprError", "4:10", "division by zero", at="1//0"),
    case("misspelled_block_parameter_suggests_it", net("""
        blocks:
          cbr(filters): [conv(filtres, 3x3), relu]
        layers:
          - cbr(64)
        """), "ExprError", "4:23", "unknown name `filtres` (did you mean `filters`?)", at="filtres",
         trace="cbr: `cbr(64)` at net.yaml:6:5"),
    case("misspelled_symbol_suggests_same", net("""
        layers:
          - conv(64, 3x3, padding=sme)
        """), "ExprError", "4:27", "unknown name `sme` (did you mean `same`?)", at="sme"),
    case("unclosed_parenthesis_in_a_call", net("""
        layers:
          - conv(64, 3x3
        """), "ExprError", "4:17", "it ends too early (an unclosed bracket", at=""),
    case("stray_closing_parenthesis", net("""
        layers:
          - conv(64, 3x3))
        """), "ExprError", "4:18", "unexpected `)`", at=")"),
    case("number_too_large", net("""
        layers:
          - conv(99999999 * 99999999, 3x3)
        """), "ExprError", "4:10", "which is too large", at="99999999 *"),
    case("error_in_a_call_continued_on_the_next_line", net("""
        layers:
          - conv(64, 3x3,
              padding=sme)
        """), "ExprError", "5:15", "unknown name `sme`", at="sme"),

    # ---- shapes ---------------------------------------------------------------------------------
    case("add_of_different_channel_counts_shows_both_shapes", net("""
        layers:
          - add:
              a: conv(16, 3x3, padding=same)
              b: conv(32, 3x3, padding=same)
        """), "ShapeError", "4:5", "`a` [16, 32, 32]; `b` [32, 32, 32]", at="add:"),
    case("concat_of_different_spatial_sizes", net("""
        layers:
          - concat: [maxpool(2x2), conv(8, 3x3, padding=same)]
        """), "ShapeError", "4:5", "differ beyond the channel axis: `branch1` [3, 16, 16]; "
                                   "`branch2` [8, 32, 32]", at="concat:"),
    case("spatial_size_running_out_after_repeated_pooling", net("""
        layers:
          - maxpool(2x2) x 8
        """), "ShapeError", "4:13", "`maxpool_6` on input [3, 1, 1]: the kernel's height (2) is larger",
         at="2x2"),
    case("kernel_larger_than_the_input_with_valid_padding", net("""
        layers:
          - conv(8, 33x33)
        """), "ShapeError", "4:13", "on input [3, 32, 32]: the kernel's height (33) is larger than the padded "
                                    "input's (32)", at="33x33"),
    case("groups_not_dividing_the_input_channels", net("""
        layers:
          - conv(8, 3x3, groups=2)
        """), "ShapeError", "4:18", "groups=2 must divide both the input channels (3)", at="groups=2"),
    case("dense_on_an_image_says_add_flatten", net("""
        layers:
          - conv(8, 3x3)
          - dense(10)
        """), "ShapeError", "5:5", "`dense` on input [8, 30, 30]: needs a flat [features] input; add `flatten`",
         at="dense(10)"),
    case("pool_on_a_flat_tensor_names_the_op", net("""
        layers:
          - flatten
          - maxpool(2x2)
        """), "ShapeError", "5:5", "`maxpool` on input [3072]: needs a [channels, height, width] input",
         at="maxpool"),
    case("expect_that_does_not_hold", net("""
        layers:
          - conv(8, 3x3)
          - expect: [8, 32, 32]
        """), "ShapeError", "5:5", "expected shape [8, 32, 32] here, but it is [8, 30, 30]", at="expect:"),
    case("shape_error_inside_a_block_names_the_call_site", net("""
        blocks:
          res(f):
            add:
              shortcut: identity
              residual: [conv(f, 3x3, padding=same)]
        layers:
          - stem: res(8)
        """), "ShapeError", "5:5", "input of the merge [3, 32, 32]; `residual/conv` [8, 32, 32]",
         at="add:", trace="stem: `res(8)` at net.yaml:9:11"),

    # ---- defaults -------------------------------------------------------------------------------
    case("defaults_naming_an_unknown_op", net("""
        defaults:
          convv: {bias: false}
        layers:
          - relu
        """), "ResolveError", "4:3", "`defaults` names `convv`, which is not an op (did you mean `conv`?)",
         at="convv"),
    case("defaults_naming_an_unknown_op_with_no_attributes", net("""
        defaults:
          convv: {}
        layers:
          - relu
        """), "ResolveError", "4:3", "names `convv`, which is not an op", at="convv"),
    case("defaults_naming_an_unknown_attribute", net("""
        defaults:
          conv: {biass: false}
        layers:
          - relu
        """), "ResolveError", "4:10", "`conv` has no argument `biass` (did you mean `bias`?)", at="biass"),
    case("defaults_value_of_the_wrong_type", net("""
        defaults:
          conv: {bias: 3}
        layers:
          - conv(8, 3x3)
        """), "ResolveError", "4:16", "`bias` must be `true` or `false`, got `3` (int)",
         at="3}"),

    # ---- document structure ---------------------------------------------------------------------
    case("misspelled_top_level_key_suggests_layers", net("""
        layrs:
          - relu
        """), "SchemaError", "3:1", "unknown key `layrs` (did you mean `layers`?)", at="layrs"),
    case("missing_layers", HEAD, "SchemaError", "1:1", "missing key `layers`", at="network"),
    case("empty_layers", net("""
        layers: []
        """), "SchemaError", "3:9", "layers: list should have at least 1 item", at="[]"),
    case("input_with_a_zero", "network: t\ninput: [3, 0, 32]\nlayers: [relu]\n",
         "SchemaError", "2:12", "input[1]: input should be greater than 0", at="0"),
    case("input_with_an_unknown_name", "network: t\ninput: [3, abc, 32]\nlayers: [relu]\n",
         "ExprError", "2:12", "unknown name `abc`", at="abc"),
    case("input_with_four_dimensions", "network: t\ninput: [3, 32, 32, 1]\nlayers: [relu]\n",
         "SchemaError", "2:8", "at most 3 items", at="[3"),
    case("network_name_that_is_not_an_identifier", "network: 1t\ninput: [3, 32, 32]\nlayers: [relu]\n",
         "SchemaError", "1:10", "`1t` is not a name: a name is ASCII letters, digits and `_`, not starting with a "
         "digit", at="1t"),
    case("layer_that_is_a_number", net("""
        layers:
          - relu
          - 42
        """), "SchemaError", "5:5", "layers[1]: a layer is a call such as `conv(64, 3x3)`", at="42"),
    case("named_layer_with_two_keys", net("""
        layers:
          - a: relu
            b: relu
        """), "SchemaError", "4:5", "a named layer is a mapping with exactly one key (its name); got 2 keys",
         at="a: relu"),
    case("layer_name_that_is_not_an_identifier", net("""
        layers:
          - 1bad: relu
        """), "SchemaError", "4:5", "`1bad` is not a name", at="1bad"),
    case("layer_name_with_a_space_or_a_letter_beyond_ascii", net("""
        layers:
          - my größe: relu
        """), "SchemaError", "4:5", "`my größe` is not a name: a name is ASCII letters, digits and `_`, not "
         "starting with a digit (e.g. `my_gr__e`)", at="my"),
    case("positional_argument_after_a_keyword_one", net("""
        layers:
          - conv(filters=16, 3x3)
        """), "ExprError", "4:22", "a positional argument follows the keyword argument `filters=`: positional "
         "arguments come first", at="3x3"),
    case("required_parameter_after_a_defaulted_one", net("""
        blocks:
          cb(a=1, b): [conv(a, 3x3)]
        layers:
          - cb(b=2)
        """), "ExprError", "4:11", "parameter `b` has no default but follows `a`, which has one: parameters with "
         "defaults come last", at="b)"),
    case("input_of_two_axes", "network: t\ninput: [3, 32]\nlayers: [relu]\n", "SchemaError", "2:8",
         "`input: [3, 32]` has 2 axes; write [channels, height, width]", at="[3, 32]"),
    case("negative_batchnorm_epsilon", net("""
        layers:
          - batchnorm(eps=-1e-3)
        """), "ResolveError", "4:15", "`batchnorm` argument `eps` must be a number > 0, got -0.001", at="eps=-1e-3"),
    case("defaults_naming_a_block", net("""
        blocks:
          cbr(f): [conv(f, 3x3), relu]
        defaults:
          cbr: {f: 3}
        layers:
          - cbr(8)
        """), "ResolveError", "6:3", "`cbr`, which is a block, not an op", at="cbr: {f"),
    case("a_written_name_that_a_made_up_one_takes", net("""
        layers:
          - conv_1: conv(8, 3x3)
          - conv(8, 3x3)
          - conv(8, 3x3)
        """), "ResolveError", "5:5", "two layers are both named `conv_1`: this one (made up by cnnc from its op",
         at="conv(8"),
    case("concat_with_a_number_for_branches", net("""
        layers:
          - concat: 5
        """), "SchemaError", "4:13", "branches are a list of layers, or a mapping", at="5"),
    case("unknown_key_beside_expect", net("""
        layers:
          - expect: [3, 32, 32]
            extra: 1
        """), "SchemaError", "5:5", "unknown key `extra`", at="extra"),
    case("unknown_key_in_a_block_body_lists_the_layer_keys", net("""
        blocks:
          b: {concat: [relu], extra: 1}
        layers:
          - b
        """), "SchemaError", "4:23", "unknown key `extra`; expected one of: concat, add, mul", at="extra"),
    case("misspelt_key_of_a_labelled_block_lists_label_and_layers", net("""
        blocks:
          b: {label: A, layer: relu}
        layers:
          - b
        """), "SchemaError", "4:17", "unknown key `layer` (did you mean `layers`?); expected one of: label, layers",
         at="layer"),
    case("block_body_that_is_a_number", net("""
        blocks:
          b: 5
        layers:
          - b
        """), "SchemaError", "4:6", "blocks.b: a layer is a call", at="5"),

    # ---- YAML -------------------------------------------------------------------------------------
    case("duplicate_key", net("""
        layers: [relu]
        layers: [relu]
        """), "SourceError", "4:1", "duplicate key `layers`", at="layers"),
    case("tab_indentation", HEAD + "layers:\n\t- relu\n", "SourceError", "4:1",
         "found character '\\t' that cannot start any token", at="\t"),
    case("top_level_list", "- relu\n- conv(8, 3x3)\n", "SchemaError", "1:1", "this one is a list", at="- relu"),
    case("empty_document", "", "SourceError", "1:1", "`net.yaml` is empty"),
    case("document_with_only_a_comment", "# nothing yet\n", "SourceError", "1:1", "`net.yaml` is empty"),
    case("non_utf8_bytes", "network: t\ndescription: café\ninput: [3, 32, 32]\nlayers: [relu]\n".encode("latin-1"),
         "SourceError", "2:17", "is not UTF-8 text: byte 0xe9 at offset 27"),
    case("python_object_tag", net("""
        layers:
          - !!python/object:os.system echo
        """), "SourceError", "4:5", "YAML tag `tag:yaml.org,2002:python/object:os.system` is not allowed",
         at="!!python"),
    case("quoted_call_after_a_tag", net("""
        layers:
          - !!str 'conv(64 // 0, 3x3)'
        """), "ExprError", "4:17", "division by zero", at="64 // 0"),
    case("call_after_an_anchor", net("""
        layers:
          - &a conv(64 // 0, 3x3)
        """), "ExprError", "4:13", "division by zero", at="64 // 0"),
    case("nesting_too_deep", net("layers: " + "[" * 100 + "relu" + "]" * 100 + "\n"),
         "SourceError", "3:72", "nesting deeper than 64 levels", at="["),
    case("unclosed_flow_list", net("""
        layers: [conv(8, 3x3), relu
        """), "SourceError", "3:9", "expected ',' or ']'", at="["),
]


def _compile(text: str | bytes):
    if isinstance(text, bytes):
        return build(document.build(source.loads(text, "net.yaml")))
    return build(document.load_text(text, "net.yaml"))


def _error_class(name: str) -> type:
    return getattr(dsl_errors, name, None) or getattr(compiler_errors, name)


@pytest.mark.parametrize("text,kind,where,says,at,trace", CASES)
def test_error_cases_are_located_and_explained(text, kind, where, says, at, trace):
    with pytest.raises(CnncError) as info:
        _compile(text)
    err = info.value
    if isinstance(err, MultipleErrors):  # schema errors come together: check the one this row is about
        err = next((e for e in err.errors if says in str(e)), err.errors[0])
    message = str(err)
    assert type(err).__name__ in kind.split("|"), message
    assert all(issubclass(_error_class(k), CnncError) for k in kind.split("|"))
    assert message.startswith(f"net.yaml:{where}:"), message
    assert says in message, message
    line, col = map(int, where.split(":"))
    lines = text.decode("latin-1").splitlines() if isinstance(text, bytes) else text.splitlines()
    if at is not None:
        assert lines[line - 1][col - 1:].startswith(at), f"expected `{at}` at {where}:\n{message}"
    if err.loc.text and not isinstance(text, bytes):  # the line shown is the line pointed at
        assert err.loc.text.rstrip("\r\n") == lines[line - 1]
    if trace is not None:
        _, _, expansion = message.partition("\n  expanded from:\n")
        assert trace in expansion, message


def test_the_table_covers_every_error_class_and_enough_cases():
    kinds = {p.values[1] for p in CASES}
    for name in ("SourceError", "SchemaError", "ExprError", "ResolveError", "ShapeError"):
        assert name in kinds
    assert len(CASES) >= 30


def test_schema_errors_are_reported_together():
    text = "network: 1t\ninput: [3, 0, 32]\nlayrs: [relu]\n"
    with pytest.raises(MultipleErrors) as info:
        _compile(text)
    shown = str(info.value)
    # the unknown key first: it explains the missing one, which is not reported besides
    assert [str(e.loc) for e in info.value.errors] == ["net.yaml:3:1", "net.yaml:1:10", "net.yaml:2:12"], shown
    assert "did you mean `layers`" in shown and "greater than 0" in shown and "missing key" not in shown


def test_unparseable_calls_in_different_layers_are_reported_together():
    text = net("""
        layers:
          - conv(8, 3x3
          - relu
          - maxpool(2x2))
        """)
    with pytest.raises(MultipleErrors) as info:
        _compile(text)
    assert [str(e.loc) for e in info.value.errors] == ["net.yaml:4:16", "net.yaml:6:17"]
    assert all(isinstance(e, dsl_errors.ExprError) for e in info.value.errors)


def test_error_without_expansion_has_no_trace():
    with pytest.raises(CnncError) as info:
        _compile(net("layers:\n  - reluu\n"))
    assert "expanded from" not in str(info.value)


def test_error_two_blocks_deep_lists_every_call_site_outermost_first():
    text = net("""
        blocks:
          inner(f): [conv(f, 3x3), dense(f)]
          outer(f): [relu, inner(2 * f)]
        layers:
          - body: outer(4)
        """)
    with pytest.raises(compiler_errors.ShapeError) as info:
        _compile(text)
    expansion = str(info.value).partition("expanded from:\n")[2].splitlines()
    assert expansion == ["    body: `outer(4)` at net.yaml:7:11", "    body/inner: `inner(2 * f)` at net.yaml:5:20"]


def test_call_wrapped_inside_a_flow_list_is_not_an_error():
    graph = _compile(net("layers: [conv(8,\n  3x3, padding=same), relu]\n"))
    assert graph.output_shape == (8, 32, 32)


# ---- the CLI on malformed files ------------------------------------------------------------------
QUICKLY_S = 5  # a malformed file or a bad command line is answered within this (or the test fails)


def _billion_laughs() -> bytes:
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi"):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    return ("\n".join(lines) + "\n").encode()


DIRECTORY, MISSING = object(), object()
MALFORMED = [  # (file name, content, whether the message must carry FILE:LINE:COL)
    ("empty.yaml", b"", True),
    ("random.bin", random.Random(0).randbytes(4096), True),
    ("unclosed.yaml", b"network: t\ninput: [3, 32, 32]\nlayers: [conv(8, 3x3), relu\n", True),
    ("tabs.yaml", b"network: t\ninput: [3, 32, 32]\nlayers:\n\t- relu\n", True),
    ("list.yaml", b"- relu\n- conv(8, 3x3)\n", True),
    ("latin1.yaml", "network: t\ndescription: café\ninput: [1, 8, 8]\nlayers: [relu]\n".encode("latin-1"), True),
    ("laughs.yaml", _billion_laughs(), True),
    ("deep.yaml", b"[" * 5000, True),
    ("folder.yaml", DIRECTORY, False),
    ("missing.yaml", MISSING, False),
]


@pytest.mark.parametrize("name,content,located", [pytest.param(*row, id=row[0]) for row in MALFORMED])
def test_compile_of_a_malformed_file_exits_2_quickly_without_a_traceback_or_output(
        tmp_path, name, content, located, cli):
    if content is DIRECTORY:
        (tmp_path / name).mkdir()
    elif content is not MISSING:
        (tmp_path / name).write_bytes(content)
    before = sorted(p.name for p in tmp_path.iterdir())
    r = cli.run("compile", name, "-o", "out.onnx", cwd=tmp_path, timeout=QUICKLY_S)
    assert r.code == 2, r.err
    assert r.err.strip() and "Traceback" not in r.err, r.err
    assert max(len(line) for line in r.err.splitlines()) < 300, r.err[:1000]  # long lines windowed
    assert not (tmp_path / "out.onnx").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written, no temporary left
    if located:
        assert re.search(re.escape(name) + r":\d+:\d+: ", r.err), r.err
    else:
        assert name in r.err


@pytest.mark.parametrize("content", [
    pytest.param(b"network: t\ninput: [3, 32, 32]\nlayers: [conv(8, 3x3), relu\n", id="syntax_error"),
    pytest.param(b"network: t\ninput: [3, 32, 32]\nlayers: [conv(8, 3x3), dense(10)]\n", id="shape_error"),
])
def test_failed_compile_leaves_an_existing_output_untouched(tmp_path, content, cli):
    (tmp_path / "net.yaml").write_bytes(content)
    previous = b"\x08\x07 an earlier model, not to be clobbered"
    (tmp_path / "out.onnx").write_bytes(previous)
    r = cli.run("compile", "net.yaml", "-o", "out.onnx", cwd=tmp_path, timeout=QUICKLY_S)
    assert r.code == 2 and "Traceback" not in r.err, r.err
    assert (tmp_path / "out.onnx").read_bytes() == previous
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.yaml", "out.onnx"]  # no temporary left


def test_network_too_large_for_onnx_is_a_user_error(tmp_path, cli):
    (tmp_path / "huge.yaml").write_text("network: huge\ninput: [3, 99999999999, 99999999999]\n"
                                        "layers: [conv(8, 3x3), flatten, dense(10)]\n")
    r = cli.run("compile", "huge.yaml", "-o", "out.onnx", cwd=tmp_path, timeout=QUICKLY_S)
    assert r.code == 2 and "Traceback" not in r.err, r.err
    assert "huge.yaml:3:10:" in r.err and "limit `activation_mb`" in r.err
    assert not (tmp_path / "out.onnx").exists()


# ---- bad command lines ---------------------------------------------------------------------------
@pytest.mark.parametrize("argv", [
    pytest.param(["run", "x.onnx", "--batch", "0"], id="batch_zero"),
    pytest.param(["run", "x.onnx", "--batch", "two"], id="batch_not_a_number"),
    pytest.param(["run", "x.onnx", "--provider", "tpu"], id="unknown_provider"),
    pytest.param(["frobnicate"], id="unknown_subcommand"),
    pytest.param(["compile"], id="compile_without_a_file"),
    pytest.param(["compile", "lenet5", "--seed", "abc"], id="seed_not_a_number"),
    pytest.param(["compile", "lenet5", "--bogus"], id="unknown_option"),
    pytest.param([], id="no_subcommand"),
    pytest.param(["check", "lenet"], id="unknown_shipped_name"),
    pytest.param(["run", "missing.onnx"], id="missing_model"),
])
def test_bad_command_line_exits_2_without_a_traceback(tmp_path, argv, cli):
    r = cli.run(*argv, cwd=tmp_path, timeout=QUICKLY_S)
    assert r.code == 2, (r.out, r.err)
    assert "Traceback" not in r.err + r.out
    assert (r.err or r.out).strip()
    assert list(tmp_path.iterdir()) == []


def test_a_block_may_not_take_the_name_of_an_op():
    with pytest.raises(compiler_errors.ResolveError, match="block `relu` has the name of an op") as info:
        _compile(net("blocks:\n  relu(x): [conv(x, 1x1)]\nlayers:\n  - relu(2)\n"))
    assert str(info.value.loc) == "net.yaml:4:3"


def test_an_expansion_bomb_of_empty_blocks_is_refused_quickly():
    import time

    text = net("blocks:\n  e: []\n  a: [e x 10000]\n  b: [a x 10000]\nlayers:\n  - b x 10000\n")
    start = time.perf_counter()
    with pytest.raises(compiler_errors.ResolveError, match="more than 100,000 calls"):
        _compile(text)
    assert time.perf_counter() - start < 30  # bounded work (2.5 s alone), not 10^12 expansions
