// Engram rows of engram::Model served from a row store: the model's tables as a file that row
// stores serve (one F32 safetensors tensor per Engram layer, written atomically), the
// TableSources that point a FileStore at it, and switching decoding to a store and back
// (serve_engram_from). The fetch itself, at each decode step, is decode.cpp's.
#include <memory>
#include <string>
#include <vector>

#include "engram/error.h"
#include "engram/model.h"
#include "engram/safetensors.h"
#include "engram/store.h"
#include "model/model_impl.h"

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

void Model::Impl::serve_from(std::shared_ptr<RowStore> store, const PrefetchOptions& options) {
  if (!store) fail(Errc::invalid_argument, "serve_engram_from: the store is null");
  if (engrams.empty()) {
    fail(Errc::invalid_argument, "serve_engram_from: the model has no Engram layer");
  }
  std::vector<size_t> tables;
  for (const EngramSlot& s : engrams) {
    const std::string name = engram_store_table_name(s.layer);
    const size_t t = store->table_index(name);
    const TableDesc& d = store->table(t);
    const EngramLayerShape& sh = s.mod->shape();
    if (d.format.dtype != RowDtype::f32 || d.format.width != sh.row_width ||
        d.rows != sh.table_rows()) {
      fail(Errc::mismatch, "serve_engram_from: store table ", name, " is ",
           row_dtype_name(d.format.dtype), " [", d.rows, ", ", d.format.width,
           "] but the model's Engram layer ", s.layer, " needs f32 [", sh.table_rows(), ", ",
           sh.row_width, "]");
    }
    tables.push_back(t);
  }
  std::unique_ptr<Prefetcher> fetcher;  // built first: a bad option leaves the model as it was
  if (options.threads != 0) {
    PrefetchOptions opt = options;
    opt.output = RowOutput::f32;
    fetcher = std::make_unique<Prefetcher>(store, opt);
  }
  prefetcher = std::move(fetcher);
  row_store = std::move(store);
  store_table = std::move(tables);
  dec_stats = DecodeStats{};
}

void Model::serve_engram_from(std::shared_ptr<RowStore> store, const PrefetchOptions& options) {
  impl_->serve_from(std::move(store), options);
}

void Model::serve_engram_resident() {
  impl_->prefetcher.reset();
  impl_->row_store.reset();
  impl_->store_table.clear();
}

bool Model::engram_served() const {
  return impl_->row_store != nullptr;
}

DecodeStats Model::decode_stats() const {
  return impl_->dec_stats;
}

void Model::reset_decode_stats() {
  impl_->dec_stats = DecodeStats{};
}

}  // namespace engram
