"""TensorFlow Serving's own REST test cases as data: (upstream test, method, path, body, status, expected).

NOTICE: the requests and expected answers below restate test cases of TensorFlow Serving
(https://github.com/tensorflow/serving, Apache License 2.0) -- ``model_servers/
http_rest_api_handler_test.cc`` (H), ``util/json_tensor_test.cc`` (J, replayed through the REST
API on a half_plus_two model) and ``model_servers/tensorflow_model_server_test.py`` (S) -- used as
the specification of the behaviour. Each case names the upstream test it comes from.

``expected`` is either a dict/list (the JSON answer must equal it) or a string (the error text must
contain it). Models (built by ``tf_serving_models.py``): ``hp2v`` = saved_model_half_plus_two_2_versions
(serving version 123 only, label ``Version_Label`` -> 123, as the handler test configures it),
``default`` = saved_model_half_plus_two_cpu, ``tf2`` = saved_model_half_plus_two_tf2_cpu,
``hp3`` = saved_model_half_plus_three.
"""

H = "http_rest_api_handler_test.cc"
J = "json_tensor_test.cc"
S = "tensorflow_model_server_test.py"
M = "/v1/models/hp2v"
STATUS_123 = {"model_version_status": [
    {"version": "123", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}

CASES = [
    # --- HttpRestApiHandlerTest.UnsupportedApiCalls
    (f"{H} UnsupportedApiCalls", "GET", "/v1/foo", None, 400, "Malformed request"),
    (f"{H} UnsupportedApiCalls", "POST", "/v1/foo", None, 400, "Malformed request"),
    (f"{H} UnsupportedApiCalls", "GET", "/v1/models", None, 400, "Missing model name"),
    (f"{H} UnsupportedApiCalls", "GET", "/v1/models/debug/model_name", None, 400, "Malformed request"),
    (f"{H} UnsupportedApiCalls", "POST", "/v1/models", None, 400, "Malformed request"),
    (f"{H} UnsupportedApiCalls", "GET", "/v1/models/foo:predict", None, 400, "Malformed request"),
    (f"{H} UnsupportedApiCalls", "GET", "/v1/models/foo/version/50:predict", None, 400, "Malformed request"),
    (f"{H} UnsupportedApiCalls", "POST", "/v1/models/foo/version/50:regress", None, 400, "Malformed request"),
    (f"{H} UnsupportedApiCalls", "POST", "/v1/models/foo/versions/HELLO:regress", None, 400, "Malformed request"),
    (f"{H} UnsupportedApiCalls", "POST", "/v1/models/foo/versions/18446744073709551615:regress", None, 400,
     "Failed to convert version"),
    (f"{H} UnsupportedApiCalls", "POST", "/v1/models/foo/metadata", None, 400, "Malformed request"),
    (f"{H} UnsupportedApiCalls", "POST", "/v1/models/foo/label/some_label:regress", None, 400, "Malformed request"),
    (f"{H} UnsupportedApiCalls", "POST", "/v1/models/foo/versions/50/labels/some_label:regress", None, 400,
     "Malformed request"),
    (f"{H} UnsupportedApiCalls", "POST", "/v1/models/foo/versions/some_label:regress", None, 400,
     "Malformed request"),
    # --- PredictModelNameVersionErrors
    (f"{H} PredictModelNameVersionErrors", "POST", "/v1/models/foo:predict", '{ "instances": [1] }', 404, ""),
    (f"{H} PredictModelNameVersionErrors", "POST", "/v1/models/foo/versions/50:predict", '{ "instances": [1] }',
     404, ""),
    (f"{H} PredictModelNameVersionErrors", "POST", "/v1/models/hp2v99:predict", '{ "instances": [1] }', 404, ""),
    # --- PredictRequestErrors
    (f"{H} PredictRequestErrors", "POST", f"{M}:predict", "", 400, "JSON Parse error: The document is empty"),
    (f"{H} PredictRequestErrors", "POST", f"{M}:predict", "instances = [1, 2]", 400,
     "JSON Parse error: Invalid value"),
    (f"{H} PredictRequestErrors", "POST", f"{M}:predict", '{ "instances": ["x", "y"] }', 400,
     "not of expected type: float"),
    (f"{H} PredictRequestErrors", "POST", f"{M}/labels/Version_Nonexistent:predict", '{ "instances": ["x", "y"] }',
     400, "Unrecognized servable version label"),
    (f"{H} PredictRequestErrors", "POST", f"{M}:predict", '{ "signature_name": 100 }', 400,
     "'signature_name' key must be a string value."),
    # --- Predict
    (f"{H} Predict", "POST", f"{M}:predict", '{"instances": [[1.0, 2.0], [3.0, 4.0]]}', 200,
     {"predictions": [[2.5, 3.0], [3.5, 4.0]]}),
    (f"{H} Predict", "POST", f"{M}/versions/123:predict", '{"instances": [1.0, 2.0]}', 200,
     {"predictions": [2.5, 3.0]}),
    (f"{H} Predict", "POST", f"{M}/labels/Version_Label:predict", '{"instances": [1.0, 2.0]}', 200,
     {"predictions": [2.5, 3.0]}),
    (f"{H} Predict", "POST", f"{M}/versions/123:predict",
     '{"signature_name": "serving_default", "instances": [3.0, 4.0]}', 200, {"predictions": [3.5, 4.0]}),
    (f"{H} Predict", "POST", f"{M}/versions/123:predict",
     '{"signature_name": "serving_default", "inputs": [3.0, 4.0]}', 200, {"outputs": [3.5, 4.0]}),
    # --- Regress / Classify
    (f"{H} Regress", "POST", f"{M}:regress", '{"signature_name": "regress_x_to_y", "examples": [ { "x": 80.0 } ] }',
     200, {"results": [42.0]}),
    (f"{H} Regress", "POST", f"{M}/versions/123:regress",
     '{"signature_name": "regress_x_to_y", "examples": [ { "x": 80.0 } ] }', 200, {"results": [42.0]}),
    (f"{H} Regress", "POST", f"{M}/labels/Version_Label:regress",
     '{"signature_name": "regress_x_to_y", "examples": [ { "x": 80.0 } ] }', 200, {"results": [42.0]}),
    (f"{H} Classify", "POST", f"{M}:classify",
     '{"signature_name": "classify_x_to_y", "examples": [ { "x": 20.0 } ] }', 200, {"results": [[["", 12.0]]]}),
    (f"{H} Classify", "POST", f"{M}/labels/Version_Label:classify",
     '{"signature_name": "classify_x_to_y", "examples": [ { "x": 10.0 } ] }', 200, {"results": [[["", 7.0]]]}),
    # --- GetStatus
    (f"{H} GetStatus", "GET", M, None, 200, STATUS_123),
    (f"{H} GetStatus", "GET", f"{M}/versions/123", None, 200, STATUS_123),
    (f"{H} GetStatus", "GET", f"{M}/labels/Version_Label", None, 200, STATUS_123),
    # --- json_tensor_test.cc, through :predict on half_plus_two (x: DT_FLOAT)
    (f"{J} SingleUnnamedTensor (float values)", "POST", "/v1/models/default:predict",
     '{"instances": [[1], [2], [3]]}', 200, {"predictions": [[2.5], [3.0], [3.5]]}),
    (f"{J} MixedInputForFloatTensor", "POST", "/v1/models/default:predict",
     '{"instances": [1, 2.0, 3]}', 200, {"predictions": [2.5, 3.0, 3.5]}),
    (f"{J} FloatTensorThatExceedsMaxReturnsInf", "POST", "/v1/models/default:predict",
     '{"instances": [3.40282346638528859811704183484516925440e+39]}', 200, {"predictions": [float("inf")]}),
    (f"{J} SingleUnnamedTensorErrors", "POST", "/v1/models/default:predict", "", 400, "document is empty"),
    (f"{J} SingleUnnamedTensorErrors", "POST", "/v1/models/default:predict",
     '{"signature_name": 5, "instances": [[1,2],[3,4],[5,6,7]]}', 400, "must be a string value"),
    (f"{J} SingleUnnamedTensorErrors", "POST", "/v1/models/default:predict",
     '{"instances": [[1,2],[3,4],[5,6,7]], "inputs": [[1,2],[3,4],[5,6,7]]}', 400, "Not formatted correctly"),
    (f"{J} SingleUnnamedTensorErrors", "POST", "/v1/models/default:predict",
     '{"instances": [[1,2],[3,4],[5,6,7]]}', 400, "Expecting tensor size"),
    (f"{J} SingleUnnamedTensorErrors", "POST", "/v1/models/default:predict",
     '{"instances": [[1,2],[3,4],[[5,6]]]}', 400, "Expecting shape"),
    (f"{J} SingleUnnamedTensorErrors", "POST", "/v1/models/default:predict",
     '{"instances": [1, [1]]}', 400, "Expecting shape"),
    (f"{J} SingleUnnamedTensorErrors", "POST", "/v1/models/default:predict",
     '{"instances": [[1,2],["a", "b"]]}', 400, "not of expected type"),
    (f"{J} MultipleNamedTensorErrors (value/list then object)", "POST", "/v1/models/default:predict",
     '{"instances": [[1.0], {"x": [1.0]}]}', 400, "Expecting value/list but got object"),
    (f"{J} DeeplyNestedMalformed", "POST", "/v1/models/default:predict",
     '{"instances": [[[1]], [[2], [3]]]}', 400, "Expecting"),
    (f"{J} FromJsonSingleFloatTensorSixDigitPrecision", "POST", "/v1/models/default:predict",
     '{"inputs": [0.1]}', 200, {"outputs": [2.05]}),
    (f"{J} JsonErrors (classify without examples)", "POST", "/v1/models/default:classify",
     '{"signature_name": "classify_x_to_y", "context": {"x": 1.0}}', 400,
     "'examples' is expected and was not found"),
    (f"{J} JsonErrors (examples not a list)", "POST", "/v1/models/default:regress",
     '{"signature_name": "regress_x_to_y", "examples": {"x": 1.0}}', 400, "to be an list/array"),
    (f"{J} JsonErrors (empty examples)", "POST", "/v1/models/default:regress",
     '{"signature_name": "regress_x_to_y", "examples": []}', 400, "value is an empty array"),
    (f"{J} JsonErrors (mixed feature types)", "POST", "/v1/models/default:regress",
     '{"signature_name": "regress_x_to_y", "examples": [{"x": [1.0, "a"]}]}', 400,
     "Unexpected element type in feature: x expecting type: float"),
    (f"{J} JsonErrors (example not an object)", "POST", "/v1/models/default:regress",
     '{"signature_name": "regress_x_to_y", "examples": [1]}', 400, "Example must be JSON object but got JSON Number"),
    ("util.cc InputToSerializedExampleTensor (context prepended to each example)", "POST",
     "/v1/models/default:regress",
     '{"signature_name": "regress_x_to_y", "context": {"x": 4.0}, "examples": [{"x2": 1.0}, {"x2": 2.0}]}', 200,
     {"results": [4.0, 4.0]}),
    # --- json_tensor_test.cc request -> tensor cases, replayed on the echo model (answer = the tensor built)
    (f"{J} SingleUnnamedTensorBase64Scalars", "POST", "/v1/models/echo:predict",
     '{"instances": [ { "b64" : "aGVsbG8=" }, { "b64": "d29ybGQ=" } ]}', 200, {"predictions": ["hello", "world"]}),
    (f"{J} SingleUnnamedTensorBase64Lists", "POST", "/v1/models/echo:predict",
     '{"instances": [ [{ "b64" : "aGVsbG8=" }], [{ "b64": "d29ybGQ=" }] ]}', 200,
     {"predictions": [["hello"], ["world"]]}),
    (f"{J} SingleNamedTensorBase64", "POST", "/v1/models/echo:predict",
     '{"instances": [{"default": [ [{ "b64" : "aGVsbG8=" }], [{ "b64": "d29ybGQ=" }] ]}]}', 200,
     {"predictions": [[["hello"], ["world"]]]}),
    (f"{J} MultipleNamedTensor", "POST", "/v1/models/echo:predict",
     '{"signature_name": "multi", "instances": [{"int_tensor": [[1,2],[3,4],[5,6]], "str_tensor": ["foo", "bar"], '
     '"float_tensor": [1.0, NaN], "dbl_tensor": [NaN]}, {"int_tensor": [[7,8],[9,0],[1,2]], '
     '"str_tensor": ["baz", "bat"], "float_tensor": [2.0, Infinity], "dbl_tensor": [2.0]}]}', 200,
     ("raw", '{"predictions": [{"dbl_tensor": [NaN], "float_tensor": [1.0, NaN], "int_tensor": [[1, 2], [3, 4], '
             '[5, 6]], "str_tensor": ["foo", "bar"]}, {"dbl_tensor": [2.0], "float_tensor": [2.0, Infinity], '
             '"int_tensor": [[7, 8], [9, 0], [1, 2]], "str_tensor": ["baz", "bat"]}]}')),
    (f"{J} SingleUnnamedTensorColumnarFormat", "POST", "/v1/models/echo:predict",
     '{"signature_name": "int", "inputs": {"int_tensor": [[[1,2],[3,4],[5,6]]]}}', 200,
     {"outputs": [[[1, 2], [3, 4], [5, 6]]]}),
    (f"{J} SingleUnnamedTensorColumnarFormat (plain inputs)", "POST", "/v1/models/echo:predict",
     '{"signature_name": "int", "inputs": [[[1,2],[3,4],[5,6]]]}', 200, {"outputs": [[[1, 2], [3, 4], [5, 6]]]}),
    (f"{J} MultipleNamedTensorColumnarFormat (+ FromJsonSingleBytesTensor's *_bytes output)", "POST",
     "/v1/models/echo:predict",
     '{"signature_name": "columns", "inputs": {"int_tensor": [[[1,2],[3,4],[5,6]]], "str_tensor": ["foo", "bar"], '
     '"bin_tensor": { "b64" : "aGVsbG8=" }}}', 200,
     {"outputs": {"int_tensor": [[[1, 2], [3, 4], [5, 6]]], "str_tensor": ["foo", "bar"],
                  "bin_tensor_bytes": {"b64": "aGVsbG8="}}}),
    (f"{J} FromJsonSingleBytesTensor", "POST", "/v1/models/echo:predict",
     '{"signature_name": "str_bytes", "instances": [["hello", "world"], ["tf", "serving"]]}', 200,
     {"predictions": [[{"b64": "aGVsbG8="}, {"b64": "d29ybGQ="}], [{"b64": "dGY="}, {"b64": "c2VydmluZw=="}]]}),
    (f"{J} FromJsonSingleScalarTensor", "POST", "/v1/models/echo:predict",
     '{"signature_name": "int", "instances": [1, 2, 3, 4, 5]}', 200, {"predictions": [1, 2, 3, 4, 5]}),
    (f"{J} FromJsonSingleScalarTensor (columnar)", "POST", "/v1/models/echo:predict",
     '{"signature_name": "int", "inputs": [1, 2, 3, 4, 5]}', 200, {"outputs": [1, 2, 3, 4, 5]}),
    (f"{J} FromJsonSingleFloatTensorSixDigitPrecision", "POST", "/v1/models/echo:predict",
     '{"signature_name": "float", "instances": [[9000000, 999999, 0.50000], [0.0003, 0.00003, 555557.5]]}', 200,
     ("raw", '{"predictions": [[9e+06, 999999.0, 0.5], [0.0003, 3e-05, 555557.5]]}')),
    (f"{J} FromJsonSingleFloatTensorNonFinite", "POST", "/v1/models/echo:predict",
     '{"signature_name": "float", "instances": [[NaN, Infinity], [3, -Infinity]]}', 200,
     ("raw", '{"predictions": [[NaN, Infinity], [3.0, -Infinity]]}')),
    (f"{J} FromJsonSingleFloatTensorSixDigitPrecision (float scalar output, columnar)", "POST",
     "/v1/models/echo:predict", '{"signature_name": "float", "inputs": 0.1}', 200, ("raw", '{"outputs": 0.1}')),
    (f"{J} MultipleNamedTensorErrors (shape)", "POST", "/v1/models/echo:predict",
     '{"signature_name": "columns", "instances": [{"int_tensor": [[1,2],[3,4],[5,6]], "str_tensor": ["foo", "bar"], '
     '"bin_tensor": "x"}, {"int_tensor": [[[7,8],[9,0],[1,2]]], "str_tensor": ["baz", "bat"], "bin_tensor": "y"}]}',
     400, "Expecting shape"),
    (f"{J} MultipleNamedTensorErrors (size)", "POST", "/v1/models/echo:predict",
     '{"signature_name": "columns", "instances": [{"int_tensor": [[1,2],[3,4],[5,6],[7,8]], "str_tensor": ["foo", '
     '"bar"], "bin_tensor": "x"}, {"int_tensor": [[7,8],[9,0],[1,2]], "str_tensor": ["baz", "bat"], '
     '"bin_tensor": "y"}]}', 400, "Expecting tensor size"),
    (f"{J} MultipleNamedTensorErrors (object then list)", "POST", "/v1/models/echo:predict",
     '{"signature_name": "columns", "instances": [{"int_tensor": [[1,2]], "str_tensor": ["foo"], "bin_tensor": "x"}, '
     '[1, 20, 30]]}', 400, "Expecting object but got list"),
    (f"{J} MultipleNamedTensorErrors (list then object)", "POST", "/v1/models/echo:predict",
     '{"instances": [["baz", "bar"], {"default": ["baz", "bat"]}]}', 400, "Expecting value/list but got object"),
    (f"{J} SingleUnnamedTensorErrors (int32 from string)", "POST", "/v1/models/echo:predict",
     '{"signature_name": "int", "instances": [[1,2],["a", "b"]]}', 400, "is not of expected type: int32"),
    # --- tensorflow_model_server_test.py REST cases
    (f"{S} testClassifyREST", "POST", "/v1/models/default:classify",
     {"signature_name": "classify_x_to_y", "examples": [{"x": 2.0}]}, 200, {"results": [[["", 3.0]]]}),
    (f"{S} testRegressREST", "POST", "/v1/models/default:regress",
     {"signature_name": "regress_x_to_y", "examples": [{"x": 2.0}]}, 200, {"results": [3.0]}),
    (f"{S} testPredictREST", "POST", "/v1/models/default:predict", {"instances": [2.0, 3.0, 4.0]}, 200,
     {"predictions": [3.0, 3.5, 4.0]}),
    (f"{S} testPredictColumnarREST", "POST", "/v1/models/default:predict", {"inputs": [2.0, 3.0, 4.0]}, 200,
     {"outputs": [3.0, 3.5, 4.0]}),
    (f"{S} testGetStatusREST", "GET", "/v1/models/default", None, 200, STATUS_123),
    # TF2 model (testClassifyTf2/testRegressTf2 over REST): predict-method signatures serve classify/regress.
    (f"{S} testClassifyTf2 (REST)", "POST", "/v1/models/tf2:classify",
     {"signature_name": "classify_x_to_y", "examples": [{"x": 2.0}]}, 200, {"results": [[["", 3.0]]]}),
    (f"{S} testRegressTf2 (REST)", "POST", "/v1/models/tf2:regress",
     {"signature_name": "regress_x_to_y", "examples": [{"x": 2.0}]}, 200, {"results": [3.0]}),
    (f"{S} TF2 predict fed as the session feeds it", "POST", "/v1/models/tf2:predict",
     {"instances": [1.0, 2.0]}, 200, {"predictions": [2.5, 3.0]}),
    (f"{S} testGoodModelConfig (half_plus_three over REST)", "POST", "/v1/models/hp3:predict",
     {"instances": [2.0]}, 200, {"predictions": [4.0]}),
]
