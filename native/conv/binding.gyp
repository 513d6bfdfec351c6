{
  "targets": [
    {
      "target_name": "flow_native_conv",
      "sources": ["src/conv.cc", "src/gemm.cc"],
      "cflags_cc": ["-O3", "-std=c++17"],
      "cflags_cc!": ["-fno-exceptions"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
