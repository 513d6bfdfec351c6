{
  "targets": [
    {
      "target_name": "flow_native_conv",
      "sources": ["src/conv.cc"],
      "include_dirs": ["/usr/include/x86_64-linux-gnu", "/usr/include/aarch64-linux-gnu"],
      "libraries": ["-lopenblas"],
      "cflags_cc": ["-O3", "-std=c++17", "-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
