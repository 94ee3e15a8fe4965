{
  "targets": [
    {
      "target_name": "wgjit_bench",
      "sources": ["wgjit_bench.cc", "crypto_bench.cc", "../../addon/noise_crypto.cc"],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "../../addon",
        "../../bpf"
      ],
      "cflags": ["<!@(pkg-config --cflags libsodium libb2)"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Wno-missing-field-initializers"],
      "libraries": ["<!@(pkg-config --libs libsodium libb2)"]
    }
  ]
}
