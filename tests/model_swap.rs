//! Swapping the model without a restart (`--model DIR` is watched): new streams, Classify
//! and `GetModelInfo` get the new model, a stream open across the swap finishes on the one
//! it started with, and a model that does not load leaves the current one in place.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use sentio::model::{Model, ModelSource};
use sentio::proto::emotion_recognizer_client::EmotionRecognizerClient;
use sentio::proto::{AudioEncoding, GetModelInfoRequest};
use tonic::transport::Channel;

fn copy_model(from: &str, to: &Path) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("models")
        .join(from);
    // Weights first, then the card, each renamed into place as a volume update would.
    for name in ["model.safetensors", "model.json"] {
        let staged = to.join(format!(".{name}.new"));
        std::fs::copy(root.join(name), &staged).unwrap();
        std::fs::rename(&staged, to.join(name)).unwrap();
    }
}

async fn model_id(client: &mut EmotionRecognizerClient<Channel>) -> String {
    let info = client.get_model_info(GetModelInfoRequest {}).await.unwrap();
    info.into_inner().model_id
}

async fn wait_for_model(client: &mut EmotionRecognizerClient<Channel>, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while model_id(client).await != id {
        assert!(
            Instant::now() < deadline,
            "the server never swapped to {id}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_model_swaps_under_an_open_stream_which_finishes_on_its_own() {
    let dir = std::env::temp_dir().join(format!("sentio-swap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    copy_model("default", &dir);
    let model = Model::load_dir(&dir, &candle_core::Device::Cpu).unwrap();
    let (old_id, old_labels) = (model.card.id.clone(), model.card.labels.len());
    let source = dir.clone();
    let server = TestServer::start_engine(model.into(), move |c| {
        c.model = ModelSource::Dir(source);
    })
    .await;
    let mut client = server.client().await;

    // A stream opens on the old model and sends the first half of its audio.
    let audio = speech_bytes();
    let mut open = requests(config(AudioEncoding::PcmS16le, 16_000), &audio, 3200).into_iter();
    // The config and 2.1 s of audio: one whole window.
    let (tx, mut responses) = open_stream(&mut client, open.by_ref().take(22)).await;
    let mut before = StreamResult::default();
    before.add(responses.message().await.unwrap().unwrap());
    assert!(before.started);
    before.add(responses.message().await.unwrap().unwrap());
    assert_eq!(before.predictions.len(), 1, "a window before the swap");

    copy_model("crema-d", &dir);
    let new_id = serde_json::from_str::<serde_json::Value>(
        &std::fs::read_to_string(dir.join("model.json")).unwrap(),
    )
    .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(new_id, old_id);
    wait_for_model(&mut client, &new_id).await;

    // New streams and Classify get the new model (six classes)...
    let after = run_stream(
        &mut client,
        requests(config(AudioEncoding::PcmS16le, 16_000), &audio, 3200),
    )
    .await;
    assert!(after.status.is_none(), "{:?}", after.status);
    assert!(after.predictions.iter().all(|p| p.scores.len() == 6));
    let wav = std::fs::read(fixture("speech_16k.wav")).unwrap();
    let classified = client
        .classify(sentio::proto::ClassifyRequest {
            audio: wav,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(classified.model_id, new_id);

    // ...while the open stream finishes on the old one, without a cut.
    for request in open {
        tx.send(request).await.unwrap();
    }
    drop(tx);
    while let Some(message) = responses.message().await.unwrap() {
        before.add(message);
    }
    let summary = before.summary.expect("the open stream's summary");
    assert_eq!(summary.windows, 6);
    assert_eq!(summary.mean_scores.len(), old_labels);
    assert!(
        before
            .predictions
            .iter()
            .all(|p| p.scores.len() == old_labels)
    );

    // A model that does not load is logged; the current one stays.
    std::fs::write(dir.join("model.json"), "{ not a card").unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(model_id(&mut client).await, new_id);
    let still = run_stream(
        &mut client,
        requests(config(AudioEncoding::PcmS16le, 16_000), &audio, 3200),
    )
    .await;
    assert!(still.status.is_none() && still.summary.is_some());

    let metrics = server.metrics().await;
    let info = |id: &str, value: u8| {
        format!(
            r#"sentio_build_info{{version="{}",model_id="{id}"}} {value}"#,
            env!("CARGO_PKG_VERSION")
        )
    };
    assert!(metrics.contains(&info(&new_id, 1)), "{metrics}");
    assert!(metrics.contains(&info(&old_id, 0)), "{metrics}");
    std::fs::remove_dir_all(&dir).unwrap();
}
