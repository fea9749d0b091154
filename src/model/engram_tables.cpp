// A model's Engram tables as a file that row stores serve: export (one F32 safetensors tensor per
// Engram layer, written atomically) and the TableSources that point a FileStore at it. The
// decode path that reads rows back through a Prefetcher lives in model.cpp (serve_engram_from).
#include <string>
#include <vector>

#include "engram/error.h"
#include "engram/model.h"
#include "engram/safetensors.h"
#include "engram/store.h"

namespace engram {

std::string engram_store_table_name(int64_t layer) {
  return "layers." + std::to_string(layer) + ".engram.table";
}

std::string engram_table_param_name(int64_t layer) {
  return "model.layers." + std::to_string(layer) + ".engram.multi_head_embedding.embedding.weight";
}

void Model::export_engram_tables(const std::string& path) {
  std::vector<TensorView> views;
  for (const EngramTableView& t : engram_tables()) {
    const size_t bytes = size_t(t.rows) * size_t(t.width) * sizeof(float);
    views.push_back(TensorView{engram_store_table_name(t.layer),
                               Dtype::F32,
                               {t.rows, t.width},
                               {reinterpret_cast<const std::byte*>(t.table), bytes}});
  }
  if (views.empty()) {
    fail(Errc::invalid_argument, "export_engram_tables: the model has no Engram layer (", path,
         " not written)");
  }
  save_safetensors(path, views, {{"format", "engram-tables"}});
}

std::vector<TableSource> Model::engram_table_sources(const std::string& path) const {
  const SafetensorsFile file = SafetensorsFile::open(path);
  std::vector<TableSource> out;
  for (const int64_t layer : config().engram.layer_ids) {
    const ParamInfo& info = param_info(engram_table_param_name(layer));
    const std::string name = engram_store_table_name(layer);
    const TensorInfo* t = file.find(name);
    if (t == nullptr) fail(Errc::mismatch, path, ": tensor ", name, " is missing");
    if (t->dtype != Dtype::F32) {
      fail(Errc::mismatch, path, ": tensor ", name, " has dtype ", dtype_name(t->dtype),
           " but Engram tables are served as F32");
    }
    if (t->shape != info.shape) {
      fail(Errc::mismatch, path, ": tensor ", name, " has shape ", shape_string(t->shape),
           " but the model's Engram layer ", layer, " has ", shape_string(info.shape));
    }
    TableSource src;
    src.desc.name = name;
    src.desc.format = RowFormat::make(RowDtype::f32, info.shape[1]);
    src.desc.rows = info.shape[0];
    src.data_path = path;
    src.data_offset = t->offset;
    out.push_back(std::move(src));
  }
  if (out.empty())
    fail(Errc::invalid_argument, "engram_table_sources: the model has no Engram layer");
  return out;
}

}  // namespace engram
