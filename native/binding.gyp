{
  "targets": [
    {
      "target_name": "latentlab",
      "sources": ["latentlab.cc"],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")"
      ],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++20"],
      "cflags": ["-O3", "-fopenmp", "-fno-trapping-math", "-fno-math-errno"],
      "cflags_cc": ["-std=c++17", "-O3", "-fopenmp", "-fno-trapping-math", "-fno-math-errno", "-fexceptions"],
      "ldflags": ["-fopenmp"],
      "libraries": ["-ldnnl", "-fopenmp"]
    }
  ]
}
